#include "worker/http_options.h"

namespace cppgunicorn::worker {

http::ParserOptions parser_options(const config::Config& c) {
  http::ParserOptions o;
  o.limits = http::effective_limits(c.limit_request_line, c.limit_request_fields,
                                    c.limit_request_field_size, c.limit_request_body);
  o.header_map = c.header_map == "refuse"      ? http::HeaderMap::kRefuse
                 : c.header_map == "dangerous" ? http::HeaderMap::kDangerous
                                               : http::HeaderMap::kDrop;
  o.permit_obsolete_folding = c.permit_obsolete_folding;
  o.permit_unconventional_http_method = c.permit_unconventional_http_method;
  o.casefold_http_method = c.casefold_http_method;
  o.strip_header_spaces = c.strip_header_spaces;
  o.forwarder_headers = c.forwarder_headers;
  o.uwsgi = c.protocol == "uwsgi";
  o.proxy_protocol = c.proxy_protocol == "v1"     ? http::ProxyProtocol::kV1
                     : c.proxy_protocol == "v2"   ? http::ProxyProtocol::kV2
                     : c.proxy_protocol == "auto" ? http::ProxyProtocol::kAuto
                                                  : http::ProxyProtocol::kOff;
  return o;
}

}  // namespace cppgunicorn::worker
