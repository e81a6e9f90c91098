// Ownership of one libuv handle. The handle lives on the heap; close() hands
// it to uv_close and its memory is freed in the close callback, never before
// (libuv docs/src/design.rst: a handle's memory must stay valid until then).
#pragma once

#include <uv.h>

#include <memory>

namespace cppgunicorn::net {

template <class T>
class UvHandle {
 public:
  UvHandle() : handle_(std::make_unique<T>()) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  T* get() const { return handle_.get(); }
  uv_handle_t* as_handle() const { return reinterpret_cast<uv_handle_t*>(handle_.get()); }
  uv_stream_t* as_stream() const { return reinterpret_cast<uv_stream_t*>(handle_.get()); }
  explicit operator bool() const { return handle_ != nullptr; }

  // Only for a handle that was initialised (uv_*_init succeeded). The loop
  // must run afterwards so that the callback frees the memory.
  void close() {
    if (!handle_ || !initialised_) {
      handle_.reset();
      return;
    }
    T* raw = handle_.release();
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(raw))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(raw),
             [](uv_handle_t* h) { std::unique_ptr<T> owned(reinterpret_cast<T*>(h)); });
  }
  void mark_initialised() { initialised_ = true; }

 private:
  std::unique_ptr<T> handle_;
  bool initialised_ = false;
};

}  // namespace cppgunicorn::net
