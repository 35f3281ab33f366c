"""The tornado example's web server: GET / answers "Hello, world".

Usage: python helloworld.py [PORT]   (default 8888, the port the image declares)
"""

import asyncio
import sys

import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world\n")


async def serve(port: int) -> None:
    app = tornado.web.Application([(r"/", Hello)])
    app.listen(port)
    print(f"listening on port {port}", flush=True)
    await asyncio.Event().wait()  # until the container is stopped


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8888))
