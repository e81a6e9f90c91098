class _Obj:
    @staticmethod
    def attr(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"package-attr"]


obj = _Obj()
