// A small JSON value: parsed from and written to text, for the control
// socket's messages. Numbers keep an exact integer when the text had one.
// Strings are written as valid UTF-8 (an invalid byte becomes U+FFFD), so
// any client's decoder reads what we send.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cppgunicorn::base {

struct JsonError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;  // in insertion order

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::kBool), bool_(b) {}
  Json(int n) : Json(Type::kNumber, n) {}
  Json(long n) : Json(Type::kNumber, static_cast<int64_t>(n)) {}
  Json(long long n) : Json(Type::kNumber, static_cast<int64_t>(n)) {}
  Json(unsigned n) : Json(Type::kNumber, static_cast<int64_t>(n)) {}
  Json(unsigned long n) : Json(Type::kNumber, static_cast<int64_t>(n)) {}
  Json(unsigned long long n) : Json(Type::kNumber, static_cast<int64_t>(n)) {}
  Json(double d) : type_(Type::kNumber), number_(d) {}
  Json(std::string s) : type_(Type::kString), string_(std::move(s)) {}
  Json(const char* s) : Json(std::string(s)) {}
  Json(Array a) : type_(Type::kArray), array_(std::move(a)) {}
  Json(Object o) : type_(Type::kObject), object_(std::move(o)) {}

  // Throws JsonError naming what is wrong and where. At most 32 levels of
  // nesting; nothing but whitespace after the value.
  static Json parse(std::string_view text);
  std::string dump() const;

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool as_bool() const { return bool_; }
  double number() const { return is_integer_ ? static_cast<double>(integer_) : number_; }
  // Set for a number written without fraction or exponent that fits.
  bool is_integer() const { return type_ == Type::kNumber && is_integer_; }
  int64_t integer() const { return integer_; }
  const std::string& string() const { return string_; }
  const Array& array() const { return array_; }
  const Object& object() const { return object_; }
  // The member called `key` of an object, or nullptr.
  const Json* find(std::string_view key) const;

 private:
  Json(Type type, int64_t integer) : type_(type), is_integer_(true), integer_(integer) {}
  friend class JsonParser;
  void dump_to(std::string& out) const;

  Type type_ = Type::kNull;
  bool bool_ = false;
  bool is_integer_ = false;
  int64_t integer_ = 0;
  double number_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

}  // namespace cppgunicorn::base
