"""Reads N messages from an exchange with pika (a standard AMQP 0.9.1 client) and
prints each as one JSON line: routing key, properties, headers and the decoded body.
Usage: pika_consume.py URL EXCHANGE N   (prints "ready" once its queue is bound)"""
import json
import sys

import pika

url, exchange, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
queue = channel.queue_declare(queue="", exclusive=True).method.queue
channel.queue_bind(queue=queue, exchange=exchange, routing_key="#")
print("ready", flush=True)
seen = 0
for method, props, body in channel.consume(queue, inactivity_timeout=60):
    if method is None:
        break
    print(json.dumps({
        "routing_key": method.routing_key,
        "message_id": props.message_id,
        "content_type": props.content_type,
        "content_encoding": props.content_encoding,
        "delivery_mode": props.delivery_mode,
        "headers": props.headers,
        "body": json.loads(body.decode("utf-8")),
    }, default=str), flush=True)
    channel.basic_ack(method.delivery_tag)
    seen += 1
    if seen >= count:
        break
connection.close()
