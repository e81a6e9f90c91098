// A second opinion on every request the parser accepts: llhttp 8.1 (strict
// mode) is run over a canonical copy of it and must agree on the framing.
// llhttp cannot read gunicorn's request lines itself (it refuses methods
// outside its list and raw bytes in the target), which is why the server
// does not use it; but where both apply, a disagreement on where a body
// ends, whether the connection stays open or whether the protocol changes
// is a request-smuggling bug in one of them.
#pragma once

#include "http/request.h"

namespace cppgunicorn::fuzz {

// Aborts when llhttp refuses the canonical copy of `r` or disagrees with it.
void check_with_llhttp(const http::Request& r);

}  // namespace cppgunicorn::fuzz
