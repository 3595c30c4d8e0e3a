"""A proxy that refuses everything and writes down what was asked of it.

Usage: /usr/bin/python3 refuse_proxy.py PORT_FILE LOG_FILE

The conformance harness points HTTPS_PROXY and HTTP_PROXY at it, with NO_PROXY covering the
simulator's loopback address, so any request a client tries to send elsewhere (a Microsoft host,
GitHub, telemetry) lands here. It answers 403 and appends the request line ("CONNECT
login.microsoftonline.com:443 HTTP/1.1") to LOG_FILE; the harness fails the step that caused it.
It listens on a free loopback port and writes the port to PORT_FILE once it is listening.
"""
import os
import socket
import sys
import threading

BODY = b"conformance harness: outbound traffic refused\n"


def serve(conn, log_file, lock):
    try:
        conn.settimeout(5)
        data = b""
        while b"\r\n" not in data and len(data) < 8192:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        with lock, open(log_file, "a") as f:
            f.write(line + "\n")
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY) + BODY)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    port_file, log_file = sys.argv[1:3]
    open(log_file, "a").close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    lock = threading.Lock()
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, log_file, lock), daemon=True).start()


if __name__ == "__main__":
    main()
