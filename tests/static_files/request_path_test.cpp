#include "static_files/request_path.h"

#include <doctest/doctest.h>

#include "static_files/mime_types.h"

using namespace cppgunicorn::static_files;

TEST_CASE("a request path is percent-decoded exactly once") {
  CHECK(decode_request_path("/static/a%20b.css").path == "/static/a b.css");
  CHECK(decode_request_path("/static/%2e%2e/x").path == "/static/../x");
  // "%252e" is "%2e" after one decoding, never ".".
  CHECK(decode_request_path("/static/%252e%252e/x").path == "/static/%2e%2e/x");
  CHECK(decode_request_path("/static/50%").path == "/static/50%");
  CHECK(decode_request_path("/static/%zz").path == "/static/%zz");
  CHECK_FALSE(decode_request_path("/static/a.css").encoded_separator);
}

TEST_CASE("an encoded slash, backslash or NUL is flagged") {
  CHECK(decode_request_path("/static/..%2fetc%2fpasswd").encoded_separator);
  CHECK(decode_request_path("/static/..%2Fx").encoded_separator);
  CHECK(decode_request_path("/static/a%5cb").encoded_separator);
  CHECK(decode_request_path("/static/a%00.css").encoded_separator);
}

TEST_CASE("a mount prefix matches whole segments only") {
  CHECK(beneath_prefix("/static/css/a.css", "/static") == std::optional<std::string_view>("css/a.css"));
  CHECK(beneath_prefix("/static", "/static") == std::optional<std::string_view>(""));
  CHECK(beneath_prefix("/static/", "/static") == std::optional<std::string_view>(""));
  CHECK_FALSE(beneath_prefix("/staticfoo/a.css", "/static"));
  CHECK_FALSE(beneath_prefix("/app", "/static"));
  CHECK(beneath_prefix("/a.css", "/") == std::optional<std::string_view>("a.css"));
}

TEST_CASE("names that could leave the directory are refused") {
  CHECK(check_file_name("css/a.css", false) == NameCheck::kOk);
  CHECK(check_file_name("..", false) == NameCheck::kRefused);
  CHECK(check_file_name("../etc/passwd", false) == NameCheck::kRefused);
  CHECK(check_file_name("css/../../x", false) == NameCheck::kRefused);
  CHECK(check_file_name("./a.css", false) == NameCheck::kRefused);
  CHECK(check_file_name("/etc/passwd", false) == NameCheck::kRefused);
  CHECK(check_file_name("css//a.css", false) == NameCheck::kRefused);
  CHECK(check_file_name("css/", false) == NameCheck::kRefused);
  CHECK(check_file_name("a\\..\\b", false) == NameCheck::kRefused);
  CHECK(check_file_name(std::string_view("a\0b", 3), false) == NameCheck::kRefused);
  CHECK(check_file_name("a\nb", false) == NameCheck::kRefused);
  CHECK(check_file_name("", false) == NameCheck::kRefused);
}

TEST_CASE("hidden names are refused unless allowed") {
  CHECK(check_file_name(".env", false) == NameCheck::kHidden);
  CHECK(check_file_name(".git/config", false) == NameCheck::kHidden);
  CHECK(check_file_name("a/.htpasswd", false) == NameCheck::kHidden);
  CHECK(check_file_name(".well-known/x", true) == NameCheck::kOk);
  CHECK(check_file_name("..", true) == NameCheck::kRefused);  // never, even when allowed
  CHECK(check_file_name("a.b.css", false) == NameCheck::kOk);
}

TEST_CASE("content types come from the built-in table, text with a charset") {
  CHECK(content_type_for("site.css") == "text/css; charset=utf-8");
  CHECK(content_type_for("js/app.JS") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("logo.png") == "image/png");
  CHECK(content_type_for("font.woff2") == "font/woff2");
  CHECK(content_type_for("README") == "application/octet-stream");
  CHECK(content_type_for("archive.unknownext") == "application/octet-stream");
  CHECK(is_compressible("text/css; charset=utf-8"));
  CHECK(is_compressible("image/svg+xml"));
  CHECK_FALSE(is_compressible("image/png"));
}

TEST_CASE("names that carry a content hash are recognised") {
  CHECK(has_content_hash("app.3f2a9c1b.js"));
  CHECK(has_content_hash("css/main-0123456789ab.css"));
  CHECK(has_content_hash("base.5af66c1b1797.css"));  // Django's manifest storage
  CHECK_FALSE(has_content_hash("app.js"));
  CHECK_FALSE(has_content_hash("app.min.js"));
  CHECK_FALSE(has_content_hash("jquery-3.7.1.js"));
  CHECK_FALSE(has_content_hash("app.abcdefab.js"));  // hex letters only: a word, not a hash
  CHECK_FALSE(has_content_hash("app.3F2A9C1B.js"));
}
