#include "static_files/open_beneath.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

using namespace cppgunicorn::static_files;

namespace {
// A tree: root/pub/{a.css, sub/b.js, inner -> sub/b.js, out -> ../secret,
// abs -> /etc/passwd, dir/}, root/secret.
struct Tree {
  std::string root;
  int pub = -1;
  Tree() {
    char tmpl[] = "/tmp/cppgunicorn-static-XXXXXX";
    root = ::mkdtemp(tmpl);
    std::string p = root + "/pub";
    ::mkdir(p.c_str(), 0755);
    ::mkdir((p + "/sub").c_str(), 0755);
    ::mkdir((p + "/dir").c_str(), 0755);
    write(p + "/a.css", "body{}");
    write(p + "/sub/b.js", "x=1");
    write(root + "/secret", "s");
    (void)!::symlink("sub/b.js", (p + "/inner").c_str());
    (void)!::symlink("../secret", (p + "/out").c_str());
    (void)!::symlink("/etc/passwd", (p + "/abs").c_str());
    (void)!::symlink("sub", (p + "/sublink").c_str());
    ::mkfifo((p + "/fifo").c_str(), 0644);
    pub = ::open(p.c_str(), O_PATH | O_DIRECTORY);
  }
  ~Tree() {
    ::close(pub);
    std::string cmd = "rm -rf " + root;
    (void)!std::system(cmd.c_str());
  }
  static void write(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    (void)!::write(fd, text.data(), text.size());
    ::close(fd);
  }
};
}  // namespace

TEST_CASE("open_beneath opens regular files beneath the directory only") {
  Tree t;
  CHECK(open_beneath(t.pub, "a.css").status == OpenStatus::kOpened);
  CHECK(open_beneath(t.pub, "sub/b.js").status == OpenStatus::kOpened);
  CHECK(open_beneath(t.pub, "missing.css").status == OpenStatus::kNotFound);
  CHECK(open_beneath(t.pub, "a.css/x").status == OpenStatus::kNotFound);
  CHECK(open_beneath(t.pub, "dir").status == OpenStatus::kNotRegular);
  // A FIFO is opened without blocking, then refused.
  CHECK(open_beneath(t.pub, "fifo").status == OpenStatus::kNotRegular);
  if (kernel_has_openat2()) {
    // The kernel follows a symlink that stays beneath, refuses one that leaves.
    CHECK(open_beneath(t.pub, "inner").status == OpenStatus::kOpened);
    CHECK(open_beneath(t.pub, "sublink/b.js").status == OpenStatus::kOpened);
    CHECK(open_beneath(t.pub, "out").status == OpenStatus::kNotFound);
    CHECK(open_beneath(t.pub, "abs").status == OpenStatus::kNotFound);
    CHECK(open_beneath(t.pub, "../secret").status == OpenStatus::kNotFound);
  }
}

TEST_CASE("the walk without openat2 refuses every symlink") {
  Tree t;
  CHECK(open_by_walk(t.pub, "a.css").status == OpenStatus::kOpened);
  CHECK(open_by_walk(t.pub, "sub/b.js").status == OpenStatus::kOpened);
  CHECK(open_by_walk(t.pub, "missing.css").status == OpenStatus::kNotFound);
  CHECK(open_by_walk(t.pub, "dir").status == OpenStatus::kNotRegular);
  CHECK(open_by_walk(t.pub, "fifo").status == OpenStatus::kNotRegular);
  CHECK(open_by_walk(t.pub, "inner").status == OpenStatus::kNotFound);
  CHECK(open_by_walk(t.pub, "sublink/b.js").status == OpenStatus::kNotFound);
  CHECK(open_by_walk(t.pub, "out").status == OpenStatus::kNotFound);
  CHECK(open_by_walk(t.pub, "abs").status == OpenStatus::kNotFound);
  CHECK(open_by_walk(t.pub, "../secret").status == OpenStatus::kNotFound);
}
