#include "static_files/conditions.h"

#include <cstdio>
#include <optional>

#include "static_files/http_date.h"

namespace cppgunicorn::static_files {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// A decimal number that fits 64 bits, nothing else.
std::optional<uint64_t> number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

Validators validators_of(const struct stat& st) {
  Validators v;
  unsigned long long ns = static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ULL +
                          static_cast<unsigned long long>(st.st_mtim.tv_nsec);
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", ns,
                        static_cast<unsigned long long>(st.st_size));
  v.etag.assign(buf, static_cast<size_t>(n));
  v.last_modified = st.st_mtim.tv_sec;
  return v;
}

bool etag_list_matches(std::string_view list, std::string_view etag, bool weak) {
  list = trim(list);
  if (list == "*") return true;
  // Our own tags are strong: "W/" on theirs matches only weakly.
  size_t at = 0;
  while (at < list.size()) {
    size_t comma = list.find(',', at);
    // A comma inside a quoted tag: entity tags cannot hold '"', so the
    // closing quote is the next one.
    size_t open = list.find('"', at);
    if (open != std::string_view::npos && (comma == std::string_view::npos || open < comma)) {
      size_t close = list.find('"', open + 1);
      if (close == std::string_view::npos) return false;
      comma = list.find(',', close);
    }
    std::string_view tag = trim(list.substr(at, comma == std::string_view::npos ? list.npos : comma - at));
    bool tag_weak = tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/';
    if (tag_weak) tag.remove_prefix(2);
    if (tag == etag && (weak || !tag_weak)) return true;
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return false;
}

Precondition evaluate_preconditions(const Conditions& c, const Validators& v, bool get_or_head) {
  if (!c.if_match.empty()) {
    if (!etag_list_matches(c.if_match, v.etag, false)) return Precondition::kFailed;
  } else if (!c.if_unmodified_since.empty()) {
    std::optional<std::time_t> date = parse_http_date(trim(c.if_unmodified_since));
    if (date && v.last_modified > *date) return Precondition::kFailed;
  }
  if (!c.if_none_match.empty()) {
    if (etag_list_matches(c.if_none_match, v.etag, true)) {
      return get_or_head ? Precondition::kNotModified : Precondition::kFailed;
    }
  } else if (get_or_head && !c.if_modified_since.empty()) {
    std::optional<std::time_t> date = parse_http_date(trim(c.if_modified_since));
    if (date && v.last_modified <= *date) return Precondition::kNotModified;
  }
  return Precondition::kProceed;
}

RangeAnswer evaluate_range(std::string_view range, std::string_view if_range, const Validators& v,
                           uint64_t size) {
  RangeAnswer whole;
  range = trim(range);
  if (range.empty()) return whole;
  if_range = trim(if_range);
  if (!if_range.empty()) {
    if (if_range[0] == '"' || if_range.substr(0, 2) == "W/") {
      // A weak tag never matches here (strong comparison).
      if (if_range != v.etag) return whole;
    } else {
      std::optional<std::time_t> date = parse_http_date(if_range);
      if (!date || *date != v.last_modified) return whole;
    }
  }
  size_t eq = range.find('=');
  if (eq == std::string_view::npos || !iequal(trim(range.substr(0, eq)), "bytes")) return whole;
  std::string_view spec = trim(range.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return whole;  // several ranges: the whole file
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view first_text = trim(spec.substr(0, dash));
  std::string_view last_text = trim(spec.substr(dash + 1));
  RangeAnswer answer;
  if (first_text.empty()) {
    // "-N": the last N bytes.
    std::optional<uint64_t> suffix = number(last_text);
    if (!suffix) return whole;
    if (*suffix == 0 || size == 0) {
      answer.kind = RangeAnswer::Kind::kUnsatisfiable;
      return answer;
    }
    answer.kind = RangeAnswer::Kind::kPartial;
    answer.first = *suffix >= size ? 0 : size - *suffix;
    answer.last = size - 1;
    return answer;
  }
  std::optional<uint64_t> first = number(first_text);
  if (!first) return whole;
  std::optional<uint64_t> last;
  if (!last_text.empty()) {
    last = number(last_text);
    if (!last || *last < *first) return whole;  // invalid: ignored
  }
  if (*first >= size) {
    answer.kind = RangeAnswer::Kind::kUnsatisfiable;
    return answer;
  }
  answer.kind = RangeAnswer::Kind::kPartial;
  answer.first = *first;
  answer.last = last && *last < size ? *last : size - 1;
  return answer;
}

bool accepts_encoding(std::string_view accept_encoding, std::string_view coding) {
  std::optional<bool> named;
  std::optional<bool> star;
  size_t at = 0;
  while (at <= accept_encoding.size()) {
    size_t comma = accept_encoding.find(',', at);
    std::string_view item = accept_encoding.substr(at, comma == std::string_view::npos ? accept_encoding.npos : comma - at);
    size_t semi = item.find(';');
    std::string_view name = trim(item.substr(0, semi));
    bool acceptable = true;
    if (semi != std::string_view::npos) {
      std::string_view param = trim(item.substr(semi + 1));
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        // q=0, q=0.0, q=0.000: not acceptable; any other digit makes it so.
        std::string_view q = trim(param.substr(2));
        acceptable = false;
        for (char ch : q) {
          if (ch >= '1' && ch <= '9') acceptable = true;
        }
      }
    }
    if (iequal(name, coding)) named = acceptable;
    else if (name == "*") star = acceptable;
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  if (named) return *named;
  return star.value_or(false);
}

}  // namespace cppgunicorn::static_files
