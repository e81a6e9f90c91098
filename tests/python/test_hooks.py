import os


def test_log_formats_its_arguments_as_logging_does(error_log, fresh_hooks):
    log = fresh_hooks.log
    log.info("%d workers on %s", 2, "127.0.0.1")
    log.debug("no args %s")
    log.warning("bad %d", "format")  # an argument that does not fit: the message as given
    log.warn("w")
    log.error("e")
    log.critical("c")
    log.log(20, "level %s", "as number")
    assert error_log == [(20, "2 workers on 127.0.0.1"), (10, "no args %s"), (30, "bad %d"),
                         (30, "w"), (40, "e"), (50, "c"), (20, "level as number")]


def test_log_exception_appends_the_traceback(error_log, fresh_hooks):
    try:
        raise KeyError("missing")
    except KeyError:
        fresh_hooks.log.exception("while %s", "testing")
    level, text = error_log[0]
    assert level == 40
    assert text.startswith("while testing\nTraceback (most recent call last):")
    assert text.endswith("KeyError: 'missing'")


def test_an_exception_in_a_hook_is_logged_not_raised(error_log, fresh_hooks):
    def on_starting(server):
        raise RuntimeError("hook failed")
    fresh_hooks.hooks["on_starting"] = on_starting
    fresh_hooks.call("on_starting", fresh_hooks.server)
    assert error_log[0][1].startswith("Exception in on_starting hook\nTraceback")
    assert "RuntimeError: hook failed" in error_log[0][1]


def test_a_missing_hook_is_not_called(error_log, fresh_hooks):
    fresh_hooks.call("on_starting", fresh_hooks.server)
    assert error_log == []


def test_worker_hooks_get_the_worker_object(fresh_hooks):
    seen = []
    fresh_hooks.hooks["pre_fork"] = lambda server, worker: seen.append(("pre", server, worker))
    fresh_hooks.hooks["post_fork"] = lambda server, worker: seen.append(("post", server, worker))
    fresh_hooks.call_worker("pre_fork", 0, 1, True)
    fresh_hooks.set_worker(os.getpid(), 1)
    fresh_hooks.call_worker("post_fork", os.getpid(), 1, True)
    (_, server, before), (_, server2, after) = seen
    assert server is server2 is fresh_hooks.server
    assert before.pid == "[booting]" and before.age == 1 and before.ppid == os.getpid()
    assert after is fresh_hooks.worker and after.pid == os.getpid() and after.log is fresh_hooks.log


def test_request_hooks_see_the_request_and_the_response(fresh_hooks):
    seen = {}
    fresh_hooks.set_worker(os.getpid(), 1)
    fresh_hooks.hooks["pre_request"] = lambda worker, req: seen.update(pre=req)
    fresh_hooks.hooks["post_request"] = lambda worker, req, environ, resp: seen.update(
        post=(req, environ, resp))
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/a/b?x=1", "QUERY_STRING": "x=1",
               "SERVER_PROTOCOL": "HTTP/1.0", "HTTP_X_TOKEN": "t", "CONTENT_TYPE": "text/plain",
               "wsgi.url_scheme": "https", "REMOTE_ADDR": "10.0.0.1"}
    fresh_hooks.pre_request(environ)
    req = seen["pre"]
    assert (req.method, req.uri, req.path, req.query, req.version, req.scheme, req.remote_addr) == (
        "POST", "/a/b?x=1", "/a/b", "x=1", (1, 0), "https", "10.0.0.1")
    assert sorted(req.headers) == [("CONTENT-TYPE", "text/plain"), ("X-TOKEN", "t")]
    fresh_hooks.post_request(environ, "404 Not Found", [("Content-Length", "0")])
    post_req, post_environ, resp = seen["post"]
    assert post_req is req and "cppgunicorn.hook_request" not in post_environ
    assert (resp.status, resp.status_code, resp.headers) == (
        "404 Not Found", 404, [("Content-Length", "0")])


def test_a_post_request_hook_with_fewer_parameters_gets_the_first_ones(fresh_hooks):
    seen = []
    fresh_hooks.set_worker(os.getpid(), 1)
    fresh_hooks.hooks["post_request"] = lambda worker, req: seen.append(req.method)
    fresh_hooks.post_request({"REQUEST_METHOD": "GET"}, "200 OK", [])
    assert seen == ["GET"]
