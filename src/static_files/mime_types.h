// Content-Type from a file name's extension: a built-in table, so that what
// a file is served as does not depend on the machine's /etc/mime.types.
#pragma once

#include <string_view>

namespace cppgunicorn::static_files {

// "text/css; charset=utf-8" for "site.css"; text types carry charset=utf-8
// (the encoding of nearly every such file today, and what WhiteNoise says).
// Unknown extensions are "application/octet-stream".
std::string_view content_type_for(std::string_view file_name);

// Worth a precompressed sibling (text, scripts, JSON, SVG, fonts that are
// not compressed already): such responses carry Vary: Accept-Encoding.
bool is_compressible(std::string_view content_type);

// A name that carries a content hash, so that its content never changes
// under it: "app.3f2a9c1b.js", "main-0123456789ab.css" (a dot- or
// dash-separated part of 8 to 64 lowercase hex digits before the
// extension, with at least one digit: Django's ManifestStaticFilesStorage,
// webpack, Vite, esbuild).
bool has_content_hash(std::string_view file_name);

}  // namespace cppgunicorn::static_files
