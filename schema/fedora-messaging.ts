/**
 * fedora-messaging on AMQP 0.9.1 (DESIGN.md §2): a UTF-8 JSON object body,
 * properties `content_type=application/json`, `content_encoding=utf-8`,
 * `delivery_mode=2`, `message_id`, and headers `fedora_messaging_schema`,
 * `fedora_messaging_severity` (10|20|30|40), `sent-at`, `priority`, optionally
 * `fedora_messaging_schema_package` and the filter headers
 * `fedora_messaging_{user,group,rpm,container,module,flatpak}_<name>: true`.
 *
 * Property names follow @cloudamqp/amqp-client (`contentType`, `messageId`, …),
 * the AMQP client this project publishes with.
 */
import * as Schema from "effect/Schema";

export const CONTENT_TYPE = "application/json";
export const CONTENT_ENCODING = "utf-8";
/** AMQP persistent delivery. */
export const DELIVERY_MODE_PERSISTENT = 2;
/** The schema name of the base fedora-messaging message class. */
export const BASE_MESSAGE_SCHEMA = "base.message";

export const SEVERITY = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 } as const;
export const DEFAULT_SEVERITY = SEVERITY.INFO;
export const DEFAULT_PRIORITY = 0;

export const FedoraMessagingSeverity = Schema.Literals([10, 20, 30, 40]);
export type FedoraMessagingSeverity = typeof FedoraMessagingSeverity.Type;

/**
 * ISO 8601 with a UTC offset and no fractional seconds, as fedora-messaging
 * writes it (`2019-07-30T19:12:22+00:00`). We always write `+00:00`; other
 * offsets are accepted when reading.
 */
export const SENT_AT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/;
export const SentAt = Schema.String.check(Schema.isPattern(SENT_AT_PATTERN));

/** AMQP priority is an octet; fedora-messaging defaults to 0. */
export const Priority = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }));

/** Filter headers: `fedora_messaging_user_<name>: true` and friends. */
export const FILTER_HEADER_PATTERN = /^fedora_messaging_(user|group|rpm|container|module|flatpak)_.+$/;

export const FedoraMessagingHeaders = Schema.StructWithRest(
  Schema.Struct({
    // Optional because fedora-messaging itself fills in defaults for messages
    // that lack them (base.message, INFO); a bridge must not refuse them.
    fedora_messaging_schema: Schema.optionalKey(Schema.String),
    fedora_messaging_schema_package: Schema.optionalKey(Schema.String),
    fedora_messaging_severity: Schema.optionalKey(FedoraMessagingSeverity),
    "sent-at": Schema.optionalKey(SentAt),
    priority: Schema.optionalKey(Priority),
  }),
  // Filter headers and anything else a publisher adds travel untouched.
  [Schema.Record(Schema.String, Schema.Unknown)],
);
export type FedoraMessagingHeaders = typeof FedoraMessagingHeaders.Type;

/** The AMQP basic properties of a fedora-messaging message. */
export const FedoraMessagingProperties = Schema.Struct({
  contentType: Schema.Literal(CONTENT_TYPE),
  contentEncoding: Schema.Literal(CONTENT_ENCODING),
  deliveryMode: Schema.Literal(DELIVERY_MODE_PERSISTENT),
  messageId: Schema.String,
  priority: Schema.optionalKey(Priority),
  headers: FedoraMessagingHeaders,
});
export type FedoraMessagingProperties = typeof FedoraMessagingProperties.Type;

/** A message body: always a JSON object. */
export const FedoraMessagingBody = Schema.Record(Schema.String, Schema.Unknown);
export type FedoraMessagingBody = typeof FedoraMessagingBody.Type;

/**
 * The serialized form of fedora-messaging's `message.dumps()` / `loads()` and
 * `fedora-messaging record` (`{topic, headers, id, body, queue, priority}`).
 * `topic` and `body` are required (loads() refuses messages without them);
 * missing headers, id, queue and priority get defaults there.
 */
export const FedoraMessagingDump = Schema.StructWithRest(
  Schema.Struct({
    topic: Schema.String,
    body: FedoraMessagingBody,
    headers: Schema.optionalKey(FedoraMessagingHeaders),
    id: Schema.optionalKey(Schema.NullOr(Schema.String)),
    queue: Schema.optionalKey(Schema.NullOr(Schema.String)),
    priority: Schema.optionalKey(Priority),
  }),
  [Schema.Record(Schema.String, Schema.Unknown)],
);
export type FedoraMessagingDump = typeof FedoraMessagingDump.Type;

export const isFedoraMessagingHeaders: (u: unknown) => u is FedoraMessagingHeaders =
  Schema.is(FedoraMessagingHeaders);
export const decodeFedoraMessagingProperties = Schema.decodeUnknownResult(FedoraMessagingProperties);
export const decodeFedoraMessagingDump = Schema.decodeUnknownResult(FedoraMessagingDump);

/**
 * `sent-at` for a date: UTC, seconds precision, `+00:00` offset, e.g.
 * `2019-07-30T19:12:22+00:00` (what Python's `datetime.isoformat()` gives for
 * a UTC datetime with microseconds cleared).
 */
export function sentAt(date: Date): string {
  // toISOString() is `YYYY-MM-DDTHH:MM:SS.sssZ`; keep the first 19 characters.
  return date.toISOString().slice(0, 19) + "+00:00";
}
