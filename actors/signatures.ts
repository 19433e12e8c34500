// fedmsg X.509 signatures on the bridges: zmq_to_amqp validates incoming
// envelopes when its manifest entry says so; amqp_to_zmq signs what it publishes.
// Keys and certificates are read here, once, at start: never per message.
import { readFileSync } from "node:fs";
import type { Manifest } from "../schema/manifest.ts";
import type { EnvelopeValidator } from "../schema/convert.ts";
import { createValidator, loadSigner } from "../lib/fedmsg-crypto.ts";
import type { JsonObject } from "../lib/canonical-json.ts";
import type { Logger } from "../lib/log.ts";

export interface SignatureHooks {
  validate: Record<string, EnvelopeValidator>;
  encode: Record<string, (envelope: Record<string, unknown>) => string>;
}

export function signatureHooks(manifest: Manifest, logger: Logger): SignatureHooks {
  const hooks: SignatureHooks = { validate: {}, encode: {} };
  for (const bridge of manifest.bridges) {
    if (bridge.kind === "zmq_to_amqp") {
      const id = `zmq_to_amqp:${bridge.name}`;
      const s = bridge.signatures;
      if (!s?.validate || !s.ca_cert) {
        logger.log("info", id, "signature validation is off");
        continue;
      }
      const validator = createValidator({
        caPem: readFileSync(s.ca_cert),
        crlPem: s.crl ? readFileSync(s.crl) : null,
        routingPolicy: s.routing_policy,
        routingNitpicky: s.routing_nitpicky,
      });
      hooks.validate[bridge.name] = (_envelope, rawBody) => {
        const result = validator(rawBody);
        return result.valid ? undefined : `${result.reason}: ${result.detail}`;
      };
      logger.log("info", id, `signature validation is on (CA ${s.ca_cert}${s.crl ? `, CRL ${s.crl}` : ""}${Object.keys(s.routing_policy).length ? ", routing policy" : ""})`);
    } else if (bridge.signing) {
      const signing = bridge.signing;
      const signer = loadSigner("certname" in signing ? signing : { keyFile: signing.keyfile, certFile: signing.certfile });
      hooks.encode[bridge.name] = (envelope) => signer.sign({ ...envelope, crypto: "x509" } as JsonObject).body;
      logger.log("info", `amqp_to_zmq:${bridge.name}`, `signing outgoing messages as ${signer.cn ?? "(no CN)"}`);
    }
  }
  return hooks;
}
