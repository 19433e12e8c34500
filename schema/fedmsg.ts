/**
 * The fedmsg envelope: the JSON object in the body frame of a fedmsg ZeroMQ
 * message (DESIGN.md §2). Frames on the wire: `[topic, JSON(envelope)]`.
 *
 * Real envelopes vary a lot (see test/fixtures/fedmsg-samples.jsonl): envelopes
 * from before 2014 have no `msg_id`, many have no `username` (or `null`), a few
 * lack `i`, `crypto` can be `null`, `timestamp` can be a float, and datagrepper
 * adds keys such as `source_name`/`source_version`. So every field is optional
 * here and unknown keys are kept (never stripped, never rejected): the bridge
 * must pass on what it does not understand. Which fields a conversion actually
 * needs is decided in schema/convert.ts, not here.
 */
import * as Schema from "effect/Schema";

/** The username the AMQP → ZeroMQ bridge stamps on what it publishes (loop prevention). */
export const AMQP_BRIDGE_USERNAME = "amqp-bridge";

/** A JSON object with arbitrary values (envelope `headers`, message bodies). */
export const JsonObjectLike = Schema.Record(Schema.String, Schema.Unknown);
export type JsonObjectLike = typeof JsonObjectLike.Type;

/** `msg_id` as fedmsg makes it: `"<year>-<uuid4>"`. Older or foreign ids are plain strings. */
export const FEDMSG_MSG_ID_PATTERN = /^\d{4}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const FedmsgEnvelope = Schema.StructWithRest(
  Schema.Struct({
    /** e.g. `org.fedoraproject.prod.bodhi.update.comment`; the topic frame is what routes. */
    topic: Schema.optionalKey(Schema.String),
    /** The payload. Any JSON value on the wire; a JSON object in every real message. */
    msg: Schema.optionalKey(Schema.Unknown),
    /** `"<year>-<uuid4>"`; absent in pre-2014 envelopes. */
    msg_id: Schema.optionalKey(Schema.String),
    /** Epoch seconds (int from fedmsg, float when stored by datanommer). */
    timestamp: Schema.optionalKey(Schema.Number),
    /** Per-publisher counter. */
    i: Schema.optionalKey(Schema.Number),
    username: Schema.optionalKey(Schema.NullOr(Schema.String)),
    headers: Schema.optionalKey(JsonObjectLike),
    /** `"x509"` (or `"gpg"`) when signed; `null` in some stored messages. */
    crypto: Schema.optionalKey(Schema.NullOr(Schema.String)),
    signature: Schema.optionalKey(Schema.String),
    certificate: Schema.optionalKey(Schema.String),
  }),
  // Unknown keys (source_name, source_version, …) are kept as they are.
  [JsonObjectLike],
);
export type FedmsgEnvelope = typeof FedmsgEnvelope.Type;

/** Type guard over the schema (allocation-free; no error reporting). */
export const isFedmsgEnvelope: (u: unknown) => u is FedmsgEnvelope = Schema.is(FedmsgEnvelope);

/** Decoder returning a `Result` (Success with the envelope, Failure with a `SchemaError`). */
export const decodeFedmsgEnvelope = Schema.decodeUnknownResult(FedmsgEnvelope);

/**
 * The envelope the AMQP → ZeroMQ bridge publishes, in its key order
 * (`topic, msg, timestamp, msg_id, i, username, headers`). `headers` carries
 * the AMQP headers: beyond the reference implementation, so nothing is lost.
 */
export interface BridgedFedmsgEnvelope {
  topic: string;
  msg: JsonObjectLike;
  timestamp: number;
  msg_id: string;
  i: number;
  username: typeof AMQP_BRIDGE_USERNAME;
  headers?: Record<string, unknown>;
}
