// HTTP dates (RFC 9110 section 5.6.7): written as IMF-fixdate, read in all
// three forms a recipient must accept.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace cppgunicorn::static_files {

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::string format_http_date(std::time_t t);

// IMF-fixdate, the obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT")
// and asctime's ("Sun Nov  6 08:49:37 1994"); nullopt for anything else.
std::optional<std::time_t> parse_http_date(std::string_view text);

}  // namespace cppgunicorn::static_files
