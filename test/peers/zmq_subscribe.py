"""Receives N fedmsg messages with pyzmq (libzmq's Python binding) as a fedmsg
consumer would, and prints each as one JSON line: [topic, envelope].
Usage: zmq_subscribe.py ENDPOINT N   (prints "ready" once connected)"""
import json
import sys

import zmq

endpoint, count = sys.argv[1], int(sys.argv[2])
socket = zmq.Context().socket(zmq.SUB)
socket.setsockopt(zmq.SUBSCRIBE, b"")
socket.setsockopt(zmq.RCVTIMEO, 60000)
socket.connect(endpoint)
print("ready", flush=True)
for _ in range(count):
    topic, body = socket.recv_multipart()
    print(json.dumps([topic.decode("utf-8"), json.loads(body.decode("utf-8"))]), flush=True)
