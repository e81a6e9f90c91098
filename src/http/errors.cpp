#include "http/errors.h"

namespace cppgunicorn::http {

int status_for(ParseError error) {
  switch (error) {
    case ParseError::kNone: return 200;
    case ParseError::kVersionNotSupported: return 505;
    case ParseError::kUnsupportedEncoding: return 501;
    case ParseError::kRequestLineTooLong: return 414;
    case ParseError::kForbiddenProxy: return 403;
    case ParseError::kBodyTooLarge: return 413;
    case ParseError::kExpectationFailed: return 417;
    case ParseError::kRequestTimeout: return 408;
    case ParseError::kInsufficientStorage: return 507;
    case ParseError::kSpoolBudgetExceeded:
    case ParseError::kSpoolFailed: return 503;
    case ParseError::kInvalidUwsgiPacket:
    case ParseError::kForbiddenUwsgiPeer: return 500;
    case ParseError::kTooManyHeaders:
    case ParseError::kHeaderTooLarge: return 431;
    default: return 400;
  }
}


std::string_view canned_response(ParseError error) {
  // Bodies are short on purpose: the reason is logged, not echoed back.
  if (error == ParseError::kPlainHttpToTls) {
    // nginx's words, so that whoever reads it knows to use https://.
    return "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
           "Content-Length: 46\r\n\r\nThe plain HTTP request was sent to HTTPS port\n";
  }
  switch (status_for(error)) {
    case 414:
      return "HTTP/1.1 414 URI Too Long\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 13\r\n\r\nURI Too Long\n";
    case 431:
      return "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
             "Content-Type: text/plain\r\nContent-Length: 32\r\n\r\n"
             "Request Header Fields Too Large\n";
    case 403:
      return "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 10\r\n\r\nForbidden\n";
    case 408:
      return "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 16\r\n\r\nRequest Timeout\n";
    case 413:
      return "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 18\r\n\r\nContent Too Large\n";
    case 417:
      return "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 19\r\n\r\nExpectation Failed\n";
    case 503:
      return "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Retry-After: 1\r\nContent-Length: 20\r\n\r\nService Unavailable\n";
    case 507:
      return "HTTP/1.1 507 Insufficient Storage\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 21\r\n\r\nInsufficient Storage\n";
    case 500:
      return "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 22\r\n\r\nInternal Server Error\n";
    case 501:
      return "HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 16\r\n\r\nNot Implemented\n";
    case 505:
      return "HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\n"
             "Content-Type: text/plain\r\nContent-Length: 27\r\n\r\n"
             "HTTP Version Not Supported\n";
    default:
      return "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             "Content-Length: 12\r\n\r\nBad Request\n";
  }
}

}  // namespace cppgunicorn::http
