"""The hub side of the gevent and eventlet worker classes.

A worker of these classes runs its libuv loop (all socket I/O, HTTP
parsing, the heartbeat) on a thread of its own, and this module on the
worker's main thread, on the hub of gevent or eventlet:

* :func:`patch` monkey-patches the process before the app is imported, as
  gunicorn's ``GeventWorker`` and ``EventletWorker`` do after fork.
* :func:`serve` is the dispatcher. It waits cooperatively on the pool's
  eventfd, which the loop thread writes when it queued a request, when a
  parked greenlet may go on, and on every heartbeat sweep (every 250 ms:
  ``take()`` notes that the hub ran). For queued requests it starts
  greenlets, at most ``pool.size`` at once (``--worker-connections``), each
  serving requests through the server's request path (``pool.serve_one()``:
  environ, the app, the response iterable, close) until none is left, then
  waiting to be woken for more.
  Where a pool thread would block, the greenlet calls ``park(channel_id)``
  and the dispatcher wakes it when the loop thread names that channel.

Nothing here touches a socket: requests and responses cross to the loop
thread inside the server.
"""

__all__ = ["patch", "serve"]


def patch(backend):
    """Monkey-patch this process for ``backend`` ("gevent" or "eventlet")."""
    if backend == "gevent":
        from gevent import hub, monkey

        monkey.patch_all()
        # A hub made in the master (gevent imported by --preload or a config
        # file) belongs to the parent's loop; gunicorn reinitialises it.
        hub.reinit()
    elif backend == "eventlet":
        import eventlet
        from eventlet import hubs

        hubs.use_hub()
        eventlet.monkey_patch()
    else:
        raise ValueError("no such green backend: %r" % (backend,))


class _GeventBackend:
    def __init__(self):
        import gevent
        import gevent.event
        import gevent.socket

        self.spawn = gevent.spawn
        self.wait_read = gevent.socket.wait_read
        self._event = gevent.event.Event

    def signal(self):
        event = self._event()
        return event.set, event.wait


class _EventletBackend:
    def __init__(self):
        import eventlet
        import eventlet.event
        import eventlet.hubs

        self.spawn = eventlet.spawn_n
        self._trampoline = eventlet.hubs.trampoline
        self._event = eventlet.event.Event

    def wait_read(self, fd):
        self._trampoline(fd, read=True)

    def signal(self):
        event = self._event()

        def fire():
            if not event.ready():
                event.send(True)

        def wait(timeout=None):
            return bool(event.wait(timeout))

        return fire, wait


_BACKENDS = {"gevent": _GeventBackend, "eventlet": _EventletBackend}


def serve(backend_name, pool, grace):
    """Runs the dispatcher until the loop thread has stopped and every
    greenlet returned; returns False if some were still inside the app
    ``grace`` seconds after the stop."""
    backend = _BACKENDS[backend_name]()
    parked = {}  # channel id -> fire() of the parked greenlet
    idle = []  # fire() of greenlets waiting for a request
    running = 0  # greenlets started and not returned
    starting = 0  # of those, started or woken but not yet back in serve_one()
    stopping = False
    all_done = None  # fire() once running falls to 0, while stopping

    def park(channel_id):
        fire, wait = backend.signal()
        parked[channel_id] = fire
        try:
            wait()
        finally:
            if parked.get(channel_id) is fire:
                del parked[channel_id]

    def work():
        # A greenlet serves requests while there are some, then waits for
        # more: starting one costs more than waking one.
        nonlocal running, starting
        try:
            while True:
                starting -= 1
                while pool.serve_one():
                    pass
                if stopping:
                    return
                fire, wait = backend.signal()
                idle.append(fire)
                wait()
                if stopping:
                    return
        finally:
            running -= 1
            if running == 0 and all_done is not None:
                all_done[0]()

    pool.set_park(park)
    try:
        fd = pool.fileno
        while True:
            backend.wait_read(fd)
            queued, woken, stopping = pool.take()
            for channel_id in woken:
                fire = parked.pop(channel_id, None)
                if fire is not None:
                    fire()
            wanted = queued - starting
            while wanted > 0 and idle:
                starting += 1
                wanted -= 1
                idle.pop()()
            for _ in range(min(wanted, pool.size - running)):
                running += 1
                starting += 1
                backend.spawn(work)
            if stopping:
                break
        while idle:
            idle.pop()()
        if running == 0:
            return True
        all_done = backend.signal()
        return bool(all_done[1](grace))
    finally:
        pool.set_park(None)
