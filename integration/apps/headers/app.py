"""Status and header strings at the edges of latin-1 (PEP 3333: native
strings whose characters are all below U+0100)."""


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/latin1":
        start_response("200 Ça va", [("Content-Type", "text/plain"),
                                     ("X-Word", "café ÿ")])
        return [b"ok"]
    if path == "/ascii-subclass":
        class Name(str):
            pass
        start_response(Name("200 OK"), [(Name("X-Sub"), Name("yes"))])
        return [b"ok"]
    if path == "/wide":
        start_response("200 OK", [("X-Snowman", "\u2603")])
        return [b"never sent"]
    start_response("404 Not Found", [])
    return [b""]
