#include <doctest/doctest.h>

#include "base/json.h"

using cppgunicorn::base::Json;
using cppgunicorn::base::JsonError;

TEST_CASE("json: a control request parses; integers stay exact") {
  Json r = Json::parse(R"( {"id": 12, "command": "worker add", "args": ["2", 3, 1.5, true, null]} )");
  REQUIRE(r.type() == Json::Type::kObject);
  CHECK(r.find("id")->is_integer());
  CHECK(r.find("id")->integer() == 12);
  CHECK(r.find("command")->string() == "worker add");
  const Json::Array& args = r.find("args")->array();
  REQUIRE(args.size() == 5);
  CHECK(args[1].integer() == 3);
  CHECK_FALSE(args[2].is_integer());
  CHECK(args[2].number() == 1.5);
  CHECK(args[3].as_bool());
  CHECK(args[4].is_null());
  CHECK(r.find("missing") == nullptr);
}

TEST_CASE("json: escapes and \\u sequences, surrogate pairs included") {
  Json s = Json::parse(R"("a\"b\\c\n\u00e9\ud83d\ude00")");
  CHECK(s.string() == "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(Json(s.string()).dump() == "\"a\\\"b\\\\c\\n\xc3\xa9\xf0\x9f\x98\x80\"");
}

TEST_CASE("json: invalid UTF-8 is written as U+FFFD, control bytes escaped") {
  CHECK(Json(std::string("a\xff" "b\x01")).dump() == "\"a\\ufffdb\\u0001\"");
  CHECK(Json(std::string("\xed\xa0\x80")).dump() == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
}

TEST_CASE("json: objects keep their order; numbers are written back as read") {
  Json o(Json::Object{{"b", 1}, {"a", 0.25}, {"c", Json::Array{nullptr, false}}});
  CHECK(o.dump() == R"({"b": 1, "a": 0.25, "c": [null, false]})");
  CHECK(Json::parse(o.dump()).dump() == o.dump());
}

TEST_CASE("json: malformed text is refused with where") {
  for (const char* bad : {"", "{", "{\"a\" 1}", "[1,]", "\"abc", "01x", "tru", "{} x", "\"\t\"",
                          "[1 2]", "-", "1.", "\"\\x\""}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(Json::parse(bad), JsonError);
  }
  std::string deep(40, '[');
  CHECK_THROWS_WITH_AS(Json::parse(deep), doctest::Contains("nested too deeply"), JsonError);
}
