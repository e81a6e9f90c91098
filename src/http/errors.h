// Why a request was rejected, and the ready-made response each reason gets.
// A rejected connection is always closed after that response.
#pragma once

#include <string>
#include <string_view>

namespace cppgunicorn::http {

enum class ParseError {
  kNone = 0,
  kBadRequest,             // 400: malformed syntax
  kInvalidMethod,          // 400
  kInvalidVersion,         // 400 (505 for a well-formed but unsupported one)
  kVersionNotSupported,    // 505
  kInvalidHeader,          // 400
  kInvalidChunk,           // 400
  kBodyFraming,            // 400: conflicting Content-Length / Transfer-Encoding
  kUnsupportedEncoding,    // 501: a transfer coding we do not implement
  kRequestLineTooLong,     // 414
  kTooManyHeaders,         // 431
  kHeaderTooLarge,         // 431
  kIncomplete,             // 400: the peer closed mid-request
  kInvalidProxy,           // 400: a malformed PROXY protocol header
  kForbiddenProxy,         // 403: a PROXY header from a peer not in proxy_allow_ips
  kBodyTooLarge,           // 413: the body is larger than limit_request_body
  kExpectationFailed,      // 417: an Expect other than 100-continue
  kRequestTimeout,         // 408: the head (or body) did not arrive in time
  kPlainHttpToTls,         // 400: plain HTTP sent to a TLS port (answered in plain HTTP)
  kInsufficientStorage,    // 507: the body cannot be spooled, the disk is full
  kSpoolBudgetExceeded,    // 503: the worker's spool_budget is used up by other bodies
  kSpoolFailed,            // 503: the body cannot be spooled for another reason
  // uwsgi (--protocol uwsgi). gunicorn answers both with its 500 page: its
  // workers do not count them among the client errors.
  kInvalidUwsgiPacket,     // 500: truncated, a var past the packet, modifier1 not 0
  kForbiddenUwsgiPeer,     // 500: a peer not in uwsgi_allow_ips
};

int status_for(ParseError error);

// The whole response: status line, headers, a short text body, and
// `Connection: close`.
std::string_view canned_response(ParseError error);

}  // namespace cppgunicorn::http
