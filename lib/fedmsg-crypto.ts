/**
 * fedmsg X.509 message signatures, as fedmsg (`fedmsg/crypto/x509_ng.py`) makes and checks them.
 *
 * Signing: set `crypto: "x509"`, serialise the envelope without `signature`/`certificate` with
 * fedmsg.encoding.dumps (see canonical-json.ts), sign it with RSA PKCS#1 v1.5 + SHA-1, put
 * base64(signature) in `signature` and base64(PEM of the signing cert) in `certificate`, both cut into
 * 76-character lines joined by "\n" plus a final "\n" (M2Crypto's layout).
 *
 * Validation, in fedmsg's order:
 *   1. the envelope names the x509 backend and carries `signature` and `certificate`;
 *   2. the certificate chains to the configured CA, at the current time or a configured clock, as an
 *      OpenSSL X509_STORE would do it for fedmsg (issuer lookup by name + AKID, CA checks, with a CRL
 *      configured X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL, then signatures and validity
 *      periods from the root down);
 *   3. the signature verifies with the certificate's public key over the canonical bytes;
 *   4. the routing policy (topic -> allowed certificate CNs; `routingNitpicky` rejects unlisted topics).
 *
 * Certificates and CRLs are read with a small DER reader in this file (node:crypto cannot parse CRLs);
 * every signature is checked with node:crypto. CA and CRL are parsed once in {@link createValidator};
 * per message, parsed certificates, their public keys and certificate/CRL signature results are cached.
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { canonicalStringify, parseLossless, type JsonObject, type JsonValue } from "./canonical-json.ts";

// ---------------------------------------------------------------------------------------------------
// Public types

/** Why a message did not validate. Short and stable: these are used as metric labels. */
export type InvalidReason =
  /** body is not JSON, or not a JSON object */
  | "bad_json"
  /** no `signature` or no `certificate` (unsigned message) */
  | "no_signature"
  /** `crypto` names another backend (e.g. "gpg"), or only a signature without certificate */
  | "unsupported_crypto"
  /** `certificate` cannot be decoded/parsed, has no CN, or its key is not RSA */
  | "bad_certificate"
  /** does not chain to the configured CA (unknown issuer, bad CA signature, not a CA, ...) */
  | "untrusted"
  /** a certificate of the chain (signer or CA) is past its notAfter */
  | "expired"
  /** a certificate of the chain is before its notBefore */
  | "not_yet_valid"
  /** the signer (or the CA) is on the CRL */
  | "revoked"
  /** CRL missing for the issuer, expired, not yet valid, badly signed or with unhandled critical extensions */
  | "bad_crl"
  /** the message signature does not verify with the certificate's key */
  | "bad_signature"
  /** the signer's CN is not allowed to send on this topic */
  | "routing_policy";

export const INVALID_REASONS: readonly InvalidReason[] = [
  "bad_json",
  "no_signature",
  "unsupported_crypto",
  "bad_certificate",
  "untrusted",
  "expired",
  "not_yet_valid",
  "revoked",
  "bad_crl",
  "bad_signature",
  "routing_policy",
];

export type ValidationResult =
  | { valid: true; signer: string }
  | { valid: false; reason: InvalidReason; detail: string };

export interface ValidatorConfig {
  /** PEM text holding the trusted CA certificate(s) (fedmsg `ca_cert_location`). */
  caPem: string | Uint8Array;
  /** PEM text holding the CRL(s) (fedmsg `crl_location`); null/undefined = no CRL checking. */
  crlPem?: string | Uint8Array | null;
  /** Clock for certificate/CRL validity (e.g. for replays). Default: the current time at each validation. */
  at?: Date | (() => Date);
  /** fedmsg `routing_policy`: topic -> CNs allowed to sign messages on it. */
  routingPolicy?: Readonly<Record<string, readonly string[]>>;
  /** fedmsg `routing_nitpicky`: reject topics that are absent from the routing policy. */
  routingNitpicky?: boolean;
}

/** Validates a raw ZeroMQ body (string), or an envelope already parsed with `parseLossless`. */
export type Validator = (body: string | JsonObject) => ValidationResult;

export interface SignerMaterial {
  /** PEM private key (PKCS#8 or PKCS#1, unencrypted), RSA. */
  keyPem: string | Uint8Array;
  /** PEM certificate; text before the PEM block (easy-rsa style) is fine; the first certificate is used. */
  certPem: string | Uint8Array;
}

export type SignerSource = { keyFile: string; certFile: string } | { certname: string; ssldir: string };

export interface SignedEnvelope {
  /** The signed envelope: the input plus `crypto`, `signature`, `certificate`. */
  message: JsonObject;
  /** fedmsg.encoding.dumps(message): the ZeroMQ body frame. */
  body: string;
}

export interface Signer {
  /** CN of the signing certificate. */
  readonly cn: string | undefined;
  /** The certificate as fedmsg puts it in messages (re-encoded PEM, 64-column base64). */
  readonly certificatePem: string;
  sign(envelope: JsonObject): SignedEnvelope;
}

// ---------------------------------------------------------------------------------------------------
// Signing

/** Prepare a signer once (key parsed, certificate re-encoded); throws if key and certificate do not match. */
export function createSigner(material: SignerMaterial): Signer {
  const key = createPrivateKey(toText(material.keyPem));
  if (key.asymmetricKeyType !== "rsa") {
    throw new Error(`fedmsg x509 signing needs an RSA key, got ${key.asymmetricKeyType ?? "unknown"}`);
  }
  const certDer = firstPemBlock(toText(material.certPem), CERT_PEM_LABELS);
  if (!certDer) throw new Error("no PEM certificate found in certPem");
  const cert = parseCertificate(certDer);
  const certKey = publicKeyOf(cert);
  if (!certKey || !sameRsaKey(certKey, createPublicKey(key))) {
    throw new Error("private key does not match the certificate's public key");
  }
  // cryptography's cert.public_bytes(Encoding.PEM), as x509_ng.sign does.
  const certificatePem = derToPem(certDer, "CERTIFICATE");
  const certificateField = wrap76(Buffer.from(certificatePem, "latin1").toString("base64"));
  return {
    cn: cert.subject.cn,
    certificatePem,
    sign(envelope: JsonObject): SignedEnvelope {
      const unsigned = stripCredentials(envelope);
      unsigned.crypto = "x509";
      const signature = cryptoSign("sha1", Buffer.from(canonicalStringify(unsigned), "utf8"), key);
      const message: JsonObject = { ...unsigned, signature: wrap76(signature.toString("base64")), certificate: certificateField };
      return { message, body: canonicalStringify(message) };
    },
  };
}

/** Sign one envelope (parses key and certificate each time: use createSigner/loadSigner for many). */
export function signEnvelope(envelope: JsonObject, material: SignerMaterial): SignedEnvelope {
  return createSigner(material).sign(envelope);
}

/** Read a key and certificate, like fedmsg: `<ssldir>/<certname>.key` and `<ssldir>/<certname>.crt`. */
export function loadSigner(source: SignerSource): Signer {
  const [keyFile, certFile] =
    "certname" in source
      ? [join(source.ssldir, `${source.certname}.key`), join(source.ssldir, `${source.certname}.crt`)]
      : [source.keyFile, source.certFile];
  return createSigner({ keyPem: readFileSync(keyFile, "utf8"), certPem: readFileSync(certFile, "utf8") });
}

/** The bytes fedmsg signs: fedmsg.encoding.dumps(message without `signature` and `certificate`). */
export function signingInput(message: JsonObject): string {
  return canonicalStringify(stripCredentials(message));
}

function stripCredentials(message: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(message)) {
    if (k === "signature" || k === "certificate") continue;
    if (k === "__proto__") {
      Object.defineProperty(out, k, { value: message[k], enumerable: true, writable: true, configurable: true });
    } else {
      out[k] = message[k];
    }
  }
  return out;
}

function wrap76(b64: string): string {
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return `${lines.join("\n")}\n`;
}

function sameRsaKey(a: KeyObject, b: KeyObject): boolean {
  const ja = a.export({ format: "jwk" });
  const jb = b.export({ format: "jwk" });
  return ja.kty === jb.kty && ja.n === jb.n && ja.e === jb.e;
}

// ---------------------------------------------------------------------------------------------------
// Validation

/** Validate one message (parses the CA/CRL each time: use createValidator for a stream of messages). */
export function validateEnvelope(body: string | JsonObject, config: ValidatorConfig): ValidationResult {
  return createValidator(config)(body);
}

const CERT_CACHE_MAX = 1024;

/** Parse the CA(s) and CRL(s) once and return the per-message validation function. */
export function createValidator(config: ValidatorConfig): Validator {
  const anchors = allPemBlocks(toText(config.caPem), CERT_PEM_LABELS).map((der, i) => {
    try {
      return parseCertificate(der);
    } catch (e) {
      throw new Error(`CA certificate #${i + 1}: ${errText(e)}`);
    }
  });
  if (anchors.length === 0) throw new Error("no PEM certificate found in caPem");
  const crls: Crl[] = [];
  if (config.crlPem != null) {
    const blocks = allPemBlocks(toText(config.crlPem), CRL_PEM_LABELS);
    if (blocks.length === 0) throw new Error("no PEM CRL found in crlPem");
    blocks.forEach((der, i) => {
      try {
        crls.push(parseCrl(der));
      } catch (e) {
        throw new Error(`CRL #${i + 1}: ${errText(e)}`);
      }
    });
  }
  const policy = new Map<string, ReadonlySet<string>>();
  for (const [topic, cns] of Object.entries(config.routingPolicy ?? {})) policy.set(topic, new Set(cns));
  const nitpicky = config.routingNitpicky ?? false;
  const at = config.at;
  const clock: () => number =
    at === undefined ? () => Date.now() : typeof at === "function" ? () => at().getTime() : () => at.getTime();

  const certCache = new Map<string, Cert | string>();
  const leafFromField = (field: string): Cert | string => {
    let hit = certCache.get(field);
    if (hit === undefined) {
      hit = decodeCertificateField(field);
      if (certCache.size >= CERT_CACHE_MAX) certCache.delete(certCache.keys().next().value as string);
      certCache.set(field, hit);
    }
    return hit;
  };

  return (body: string | JsonObject): ValidationResult => {
    let message: JsonObject;
    if (typeof body === "string") {
      let parsed: JsonValue;
      try {
        parsed = parseLossless(body);
      } catch (e) {
        return invalid("bad_json", errText(e));
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed) || !isPlainObject(parsed)) {
        return invalid("bad_json", "message is not a JSON object");
      }
      message = parsed as JsonObject;
    } else {
      message = body;
    }

    // fedmsg.crypto.validate: pick the backend.
    const has = (k: string) => Object.prototype.hasOwnProperty.call(message, k);
    if (has("crypto")) {
      if (message.crypto !== "x509") {
        return invalid("unsupported_crypto", `crypto backend ${safeText(message.crypto)} is not supported`);
      }
    } else if (!has("certificate")) {
      return has("signature")
        ? invalid("unsupported_crypto", "signature without certificate (gpg backend) is not supported")
        : invalid("no_signature", "message is not signed");
    }
    // x509_ng.validate
    if (!has("signature")) return invalid("no_signature", "no signature field");
    if (!has("certificate")) return invalid("no_signature", "no certificate field");
    const sigField = message.signature;
    const certField = message.certificate;
    if (typeof sigField !== "string") return invalid("bad_signature", "signature is not a string");
    if (typeof certField !== "string") return invalid("bad_certificate", "certificate is not a string");

    const leaf = leafFromField(certField);
    if (typeof leaf === "string") return invalid("bad_certificate", leaf);

    const now = Math.floor(clock() / 1000) * 1000; // OpenSSL compares whole seconds
    const chainError = verifyChain(leaf, anchors, crls, now);
    if (chainError) return chainError;

    const key = publicKeyOf(leaf);
    if (!key || key.asymmetricKeyType !== "rsa") {
      return invalid("bad_certificate", `certificate key is ${key?.asymmetricKeyType ?? "unreadable"}, not RSA`);
    }
    let signed: string;
    try {
      signed = signingInput(message);
    } catch (e) {
      return invalid("bad_json", `message cannot be serialised: ${errText(e)}`);
    }
    const signature = Buffer.from(sigField, "base64");
    if (!safeVerify("sha1", Buffer.from(signed, "utf8"), key, signature)) {
      return invalid("bad_signature", `signature does not verify with the certificate of ${leaf.subject.cn ?? "?"}`);
    }

    const cn = leaf.subject.cn;
    if (cn === undefined) return invalid("bad_certificate", "certificate subject has no CN");
    // fedmsg.crypto.utils.validate_policy
    const topic = message.topic;
    const allowed = typeof topic === "string" ? policy.get(topic) : undefined;
    if (allowed) {
      if (!allowed.has(cn)) return invalid("routing_policy", `${cn} may not send on ${String(topic)}`);
    } else if (nitpicky) {
      return invalid("routing_policy", `no routing policy for topic ${safeText(topic)} (routing_nitpicky)`);
    }
    return { valid: true, signer: cn };
  };
}

function invalid(reason: InvalidReason, detail: string): ValidationResult {
  return { valid: false, reason, detail };
}

function isPlainObject(v: object): boolean {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function safeText(v: unknown): string {
  try {
    return typeof v === "string" ? JSON.stringify(v) : String(v);
  } catch {
    return "?";
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function decodeCertificateField(field: string): Cert | string {
  // base64.b64decode(message["certificate"]) -> PEM -> load_certificate(FILETYPE_PEM, ...)
  const pem = Buffer.from(field, "base64").toString("latin1");
  const der = firstPemBlock(pem, CERT_PEM_LABELS);
  if (!der) return "certificate field holds no PEM certificate";
  try {
    return parseCertificate(der);
  } catch (e) {
    return `certificate does not parse: ${errText(e)}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Chain verification (OpenSSL X509_verify_cert as used by fedmsg's pyOpenSSL store)

const MAX_CHAIN = 100;

function verifyChain(leaf: Cert, anchors: readonly Cert[], crls: readonly Crl[], now: number): ValidationResult | null {
  // build_chain: only the configured CA certificates are available as issuers.
  const chain: Cert[] = [leaf];
  for (;;) {
    const cur = chain[chain.length - 1];
    if (cur.selfSigned) {
      if (chain.length === 1 && !anchors.some((a) => bytesEqual(a.der, cur.der))) {
        return invalid("untrusted", `self-signed certificate ${describe(cur)} is not the configured CA`);
      }
      break; // reached a trusted self-signed root
    }
    if (chain.length >= MAX_CHAIN) return invalid("untrusted", "certificate chain too long");
    let best: Cert | undefined;
    for (const cand of anchors) {
      if (chain.includes(cand) || !likelyIssued(cand, cur)) continue;
      if (timeOk(cand, now)) {
        best = cand;
        break;
      }
      if (!best || cand.notAfter > best.notAfter) best = cand; // most recently expired, as OpenSSL
    }
    if (!best) {
      return invalid(
        "untrusted",
        chain.length === 1
          ? `unable to get local issuer certificate for ${describe(cur)}`
          : `unable to get issuer certificate for CA ${describe(cur)}`,
      );
    }
    chain.push(best);
  }

  // check_extensions
  let plen = 0;
  for (let i = 0; i < chain.length; i++) {
    const x = chain[i];
    if (x.unhandledCritical.length > 0) {
      return invalid("untrusted", `unhandled critical extension ${x.unhandledCritical[0]} in ${describe(x)}`);
    }
    if (i > 0) {
      const ca = checkCa(x);
      if (ca === 0 || (i + 1 < chain.length && ca !== 1)) return invalid("untrusted", `invalid CA certificate ${describe(x)}`);
      if (i > 1 && x.pathLen !== undefined && plen > x.pathLen) {
        return invalid("untrusted", `path length constraint exceeded at ${describe(x)}`);
      }
      if (!x.selfIssued) plen++;
    }
  }

  // check_revocation with CRL_CHECK | CRL_CHECK_ALL: every certificate of the chain, leaf first.
  if (crls.length > 0) {
    for (let i = 0; i < chain.length; i++) {
      const x = chain[i];
      const issuer = chain[i + 1] ?? x;
      const err = checkCertAgainstCrls(x, issuer, crls, now);
      if (err) return err;
    }
  }

  // internal_verify: from the root down, signatures then validity periods.
  for (let n = chain.length - 1; n >= 0; n--) {
    const xs = chain[n];
    const xi = chain[n + 1];
    if (xi) {
      if (!certSignatureOk(xs, xi)) return invalid("untrusted", `certificate signature failure: ${describe(xs)}`);
    }
    if (xs.notBefore > now) {
      return invalid("not_yet_valid", `certificate is not yet valid (depth ${n}, ${describe(xs)}, notBefore ${iso(xs.notBefore)})`);
    }
    if (xs.notAfter <= now) {
      return invalid("expired", `certificate has expired (depth ${n}, ${describe(xs)}, notAfter ${iso(xs.notAfter)})`);
    }
  }
  return null;
}

function describe(c: Cert): string {
  return c.subject.cn !== undefined ? `CN=${c.subject.cn}` : `serial ${c.serial}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function timeOk(c: Cert, now: number): boolean {
  return c.notBefore <= now && now < c.notAfter;
}

/** ossl_x509_likely_issued: names, AKID, and the subject's signature algorithm fits the issuer's key. */
function likelyIssued(issuer: Cert, subject: Cert): boolean {
  if (issuer.subject.canon !== subject.issuer.canon) return false;
  if (!akidMatches(issuer, subject.akid)) return false;
  const alg = SIG_ALGS[subject.sigAlgOid];
  const key = publicKeyOf(issuer);
  return !alg || !key || alg.keyType === key.asymmetricKeyType;
}

/** X509_check_akid */
function akidMatches(issuer: Cert, akid: Akid | undefined): boolean {
  if (!akid) return true;
  if (akid.keyId !== undefined && issuer.skid !== undefined && akid.keyId !== issuer.skid) return false;
  if (akid.serial !== undefined && akid.serial !== issuer.serial) return false;
  if (akid.dirName !== undefined && akid.dirName !== issuer.issuer.canon) return false;
  return true;
}

const KU_KEY_CERT_SIGN = 5;
const KU_CRL_SIGN = 6;

/** X509_check_ca: 0 = not a CA; 1 = basicConstraints CA; 3 = v1 root; 4 = keyUsage certSign only. */
function checkCa(x: Cert): number {
  if (x.keyUsage !== undefined && !x.keyUsage.has(KU_KEY_CERT_SIGN)) return 0;
  if (x.basicConstraintsCa !== undefined) return x.basicConstraintsCa ? 1 : 0;
  if (x.version === 1 && x.selfSigned) return 3;
  if (x.keyUsage !== undefined) return 4;
  return 0;
}

function checkCertAgainstCrls(x: Cert, issuer: Cert, crls: readonly Crl[], now: number): ValidationResult | null {
  // get_crl_sk: CRLs by the certificate's issuer name (full CRLs only, AKID fitting the issuer),
  // preferring one that is current.
  let crl: Crl | undefined;
  for (const c of crls) {
    if (c.isDelta || c.issuer.canon !== x.issuer.canon || !akidMatches(issuer, c.akid)) continue;
    if (c.thisUpdate <= now && (c.nextUpdate === undefined || now < c.nextUpdate)) {
      crl = c;
      break;
    }
    crl ??= c;
  }
  const who = x === issuer ? `CA ${describe(x)}` : describe(x);
  if (!crl) return invalid("bad_crl", `unable to get certificate CRL for ${who}`);
  // check_crl
  if (issuer.keyUsage !== undefined && !issuer.keyUsage.has(KU_CRL_SIGN)) {
    return invalid("bad_crl", `issuer ${describe(issuer)} may not sign CRLs (keyUsage)`);
  }
  if (crl.thisUpdate > now) return invalid("bad_crl", `CRL is not yet valid (thisUpdate ${iso(crl.thisUpdate)})`);
  if (crl.nextUpdate !== undefined && crl.nextUpdate <= now) {
    return invalid("bad_crl", `CRL has expired (nextUpdate ${iso(crl.nextUpdate)})`);
  }
  if (!crlSignatureOk(crl, issuer)) return invalid("bad_crl", `CRL signature failure (checked with ${describe(issuer)})`);
  // cert_crl
  if (crl.unhandledCritical) return invalid("bad_crl", "unhandled critical CRL extension");
  const entry = crl.revoked.get(x.serial);
  if (entry !== undefined && !entry.removeFromCrl) {
    return invalid("revoked", `certificate revoked: ${who}, serial ${serialText(x.serial)}`);
  }
  return null;
}

function serialText(serial: string): string {
  const s = serial.toUpperCase();
  return s.length % 2 ? `0${s}` : s;
}

function certSignatureOk(subject: Cert, issuer: Cert): boolean {
  let memo = subject.verifiedBy.get(issuer);
  if (memo === undefined) {
    memo = checkSignature(subject.tbs, subject.sigAlgOid, subject.signature, issuer, subject.algIdsAgree);
    subject.verifiedBy.set(issuer, memo);
  }
  return memo;
}

function crlSignatureOk(crl: Crl, issuer: Cert): boolean {
  let memo = crl.verifiedBy.get(issuer);
  if (memo === undefined) {
    memo = checkSignature(crl.tbs, crl.sigAlgOid, crl.signature, issuer, crl.algIdsAgree);
    crl.verifiedBy.set(issuer, memo);
  }
  return memo;
}

function checkSignature(tbs: Uint8Array, sigAlgOid: string, sig: Uint8Array, issuer: Cert, algIdsAgree: boolean): boolean {
  if (!algIdsAgree) return false; // X509_ALGOR_cmp(outer, inner) != 0
  const alg = SIG_ALGS[sigAlgOid];
  const key = publicKeyOf(issuer);
  if (!alg || !key || key.asymmetricKeyType !== alg.keyType) return false;
  return safeVerify(alg.hash, tbs, key, sig);
}

function safeVerify(hash: string | null, data: Uint8Array, key: KeyObject, sig: Uint8Array): boolean {
  try {
    return cryptoVerify(hash, data, key, sig);
  } catch {
    return false;
  }
}

const SIG_ALGS: Record<string, { hash: string | null; keyType: string }> = {
  "1.2.840.113549.1.1.4": { hash: "md5", keyType: "rsa" },
  "1.2.840.113549.1.1.5": { hash: "sha1", keyType: "rsa" },
  "1.3.14.3.2.29": { hash: "sha1", keyType: "rsa" },
  "1.2.840.113549.1.1.14": { hash: "sha224", keyType: "rsa" },
  "1.2.840.113549.1.1.11": { hash: "sha256", keyType: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", keyType: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", keyType: "rsa" },
  "1.2.840.10045.4.1": { hash: "sha1", keyType: "ec" },
  "1.2.840.10045.4.3.1": { hash: "sha224", keyType: "ec" },
  "1.2.840.10045.4.3.2": { hash: "sha256", keyType: "ec" },
  "1.2.840.10045.4.3.3": { hash: "sha384", keyType: "ec" },
  "1.2.840.10045.4.3.4": { hash: "sha512", keyType: "ec" },
  "1.2.840.10040.4.3": { hash: "sha1", keyType: "dsa" },
  "2.16.840.1.101.3.4.3.2": { hash: "sha256", keyType: "dsa" },
  "1.3.101.112": { hash: null, keyType: "ed25519" },
  "1.3.101.113": { hash: null, keyType: "ed448" },
};

function publicKeyOf(c: Cert): KeyObject | null {
  if (c.key === undefined) {
    try {
      c.key = createPublicKey({ key: Buffer.from(c.spki), format: "der", type: "spki" });
    } catch {
      c.key = null;
    }
  }
  return c.key;
}

// ---------------------------------------------------------------------------------------------------
// PEM

const CERT_PEM_LABELS = new Set(["CERTIFICATE", "X509 CERTIFICATE"]);
const CRL_PEM_LABELS = new Set(["X509 CRL"]);
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

function toText(v: string | Uint8Array): string {
  return typeof v === "string" ? v : Buffer.from(v).toString("latin1");
}

function allPemBlocks(text: string, labels: ReadonlySet<string>): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (!labels.has(m[1])) continue;
    const body = m[2];
    if (/^[A-Za-z-]+:/m.test(body)) continue; // RFC 1421 headers (encrypted PEM): not a plain cert/CRL
    out.push(new Uint8Array(Buffer.from(body.replace(/\s+/g, ""), "base64")));
  }
  return out;
}

function firstPemBlock(text: string, labels: ReadonlySet<string>): Uint8Array | undefined {
  return allPemBlocks(text, labels)[0];
}

function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------------
// DER reader (read-only, bounds-checked; throws DerError on anything malformed)

class DerError extends Error {}

interface Tlv {
  tag: number;
  start: number;
  vstart: number;
  end: number;
  buf: Uint8Array;
}

function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new DerError("truncated DER");
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw new DerError("unsupported high tag number");
  let len = buf[pos + 1];
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError("unsupported DER length");
    if (p + n > limit) throw new DerError("truncated DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
  }
  const end = p + len;
  if (end > limit) throw new DerError("DER value runs past its container");
  return { tag, start: pos, vstart: p, end, buf };
}

function kids(t: Tlv): Tlv[] {
  if (!(t.tag & 0x20)) throw new DerError(`tag 0x${t.tag.toString(16)} is not constructed`);
  const out: Tlv[] = [];
  let p = t.vstart;
  while (p < t.end) {
    const c = readTlv(t.buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function want(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`expected ${what}`);
  return t;
}

function whole(t: Tlv): Uint8Array {
  return t.buf.subarray(t.start, t.end);
}

function content(t: Tlv): Uint8Array {
  return t.buf.subarray(t.vstart, t.end);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function oid(t: Tlv): string {
  const b = content(want(t, 0x06, "OBJECT IDENTIFIER"));
  if (b.length === 0) throw new DerError("empty OID");
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

/** INTEGER as lowercase hex of its (two's complement) value, for serial comparisons. */
function integerHex(t: Tlv): string {
  const b = content(want(t, 0x02, "INTEGER"));
  if (b.length === 0) throw new DerError("empty INTEGER");
  let v = BigInt(`0x${hex(b)}`);
  if (b[0] & 0x80) v -= 1n << BigInt(b.length * 8);
  return v.toString(16);
}

function smallInt(t: Tlv): number {
  const b = content(want(t, 0x02, "INTEGER"));
  if (b.length === 0 || b.length > 4 || b[0] & 0x80) throw new DerError("bad small INTEGER");
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

function bitString(t: Tlv): { unused: number; bytes: Uint8Array } {
  const b = content(want(t, 0x03, "BIT STRING"));
  if (b.length === 0 || b[0] > 7) throw new DerError("bad BIT STRING");
  return { unused: b[0], bytes: b.subarray(1) };
}

function time(t: Tlv): number {
  const s = Buffer.from(content(t)).toString("latin1");
  let m: RegExpMatchArray | null;
  if (t.tag === 0x17) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s);
    if (!m) throw new DerError(`bad UTCTime ${s}`);
    const yy = Number(m[1]);
    return Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  }
  if (t.tag === 0x18) {
    m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:[.,]\d+)?Z$/.exec(s);
    if (!m) throw new DerError(`bad GeneralizedTime ${s}`);
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  throw new DerError("expected a Time");
}

const STRING_TAGS = new Set([0x0c, 0x13, 0x14, 0x16, 0x1a, 0x1e, 0x1c]); // OpenSSL ASN1_MASK_CANON types

function decodeString(t: Tlv): string | undefined {
  const b = Buffer.from(content(t));
  switch (t.tag) {
    case 0x0c: // UTF8String
      return b.toString("utf8");
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x1a: // VisibleString
    case 0x14: // T61String (read as Latin-1, as OpenSSL does)
      return b.toString("latin1");
    case 0x1e: {
      // BMPString, UTF-16BE
      let s = "";
      for (let i = 0; i + 1 < b.length; i += 2) s += String.fromCharCode((b[i] << 8) | b[i + 1]);
      return s;
    }
    case 0x1c: {
      // UniversalString, UTF-32BE
      let s = "";
      for (let i = 0; i + 3 < b.length; i += 4) s += String.fromCodePoint(b.readUInt32BE(i));
      return s;
    }
    default:
      return undefined;
  }
}

interface Name {
  /** Canonical form for comparisons (X509_NAME_cmp: case- and whitespace-insensitive strings). */
  canon: string;
  cn?: string;
}

const OID_CN = "2.5.4.3";

function parseName(t: Tlv): Name {
  let cn: string | undefined;
  const rdns: string[] = [];
  for (const rdn of kids(want(t, 0x30, "Name"))) {
    const avas: string[] = [];
    for (const ava of kids(want(rdn, 0x31, "RDN"))) {
      const [typ, val] = kids(want(ava, 0x30, "AttributeTypeAndValue"));
      if (!val) throw new DerError("attribute without value");
      const type = oid(typ);
      let canonValue: string;
      if (STRING_TAGS.has(val.tag)) {
        const s = decodeString(val) ?? "";
        // OpenSSL x509_name_canon: ASCII whitespace trimmed and collapsed, ASCII lowercased.
        const norm = s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, "").replace(/[ \t\n\v\f\r]+/g, " ");
        canonValue = `s:${norm.replace(/[A-Z]+/g, (u) => u.toLowerCase())}`;
      } else {
        canonValue = `x:${hex(whole(val))}`;
      }
      if (type === OID_CN && cn === undefined) cn = decodeString(val);
      avas.push(`${type}=${canonValue}`);
    }
    rdns.push(avas.sort().join("+"));
  }
  return { canon: rdns.join("/"), cn };
}

interface Akid {
  keyId?: string;
  dirName?: string;
  serial?: string;
}

function parseAkid(value: Tlv): Akid {
  const akid: Akid = {};
  for (const el of kids(want(value, 0x30, "AuthorityKeyIdentifier"))) {
    if (el.tag === 0x80) akid.keyId = hex(content(el));
    else if (el.tag === 0x82) akid.serial = integerHex({ ...el, tag: 0x02 });
    else if (el.tag === 0xa1) {
      for (const gn of kids(el)) {
        if (gn.tag === 0xa4) {
          akid.dirName = parseName(kids(gn)[0]).canon;
          break;
        }
      }
    }
  }
  return akid;
}

interface Extension {
  id: string;
  critical: boolean;
  value: Tlv; // the OCTET STRING's content, parsed as one TLV when needed
  raw: Uint8Array;
}

function parseExtensions(seq: Tlv): Extension[] {
  return kids(want(seq, 0x30, "Extensions")).map((ext) => {
    const parts = kids(want(ext, 0x30, "Extension"));
    const id = oid(parts[0]);
    let critical = false;
    let i = 1;
    if (parts[i]?.tag === 0x01) {
      critical = content(parts[i]).length === 1 && content(parts[i])[0] !== 0;
      i++;
    }
    const octets = want(parts[i], 0x04, "extnValue");
    const raw = content(octets);
    return {
      id,
      critical,
      raw,
      get value(): Tlv {
        const inner = readTlv(raw, 0, raw.length);
        if (inner.end !== raw.length) throw new DerError(`trailing data in extension ${id}`);
        return inner;
      },
    };
  });
}

// Extensions OpenSSL 3 handles (X509_supported_extension); any other critical one fails verification.
const HANDLED_CERT_EXTENSIONS = new Set([
  "2.16.840.1.113730.1.1", // netscape cert type
  "2.5.29.15", // keyUsage
  "2.5.29.17", // subjectAltName
  "2.5.29.19", // basicConstraints
  "2.5.29.32", // certificatePolicies
  "2.5.29.31", // cRLDistributionPoints
  "2.5.29.37", // extKeyUsage
  "1.3.6.1.5.5.7.1.7", // sbgp-ipAddrBlock
  "1.3.6.1.5.5.7.1.8", // sbgp-autonomousSysNum
  "1.3.6.1.5.5.7.48.1.5", // OCSP noCheck
  "2.5.29.36", // policyConstraints
  "1.3.6.1.5.5.7.1.14", // proxyCertInfo
  "2.5.29.30", // nameConstraints (not enforced here; fedmsg CAs have none)
  "2.5.29.33", // policyMappings
  "2.5.29.54", // inhibitAnyPolicy
]);

interface Cert {
  der: Uint8Array;
  tbs: Uint8Array;
  sigAlgOid: string;
  algIdsAgree: boolean;
  signature: Uint8Array;
  version: number;
  serial: string;
  issuer: Name;
  subject: Name;
  notBefore: number;
  notAfter: number;
  spki: Uint8Array;
  basicConstraintsCa?: boolean;
  pathLen?: number;
  keyUsage?: ReadonlySet<number>;
  skid?: string;
  akid?: Akid;
  unhandledCritical: string[];
  selfIssued: boolean;
  selfSigned: boolean;
  key?: KeyObject | null;
  verifiedBy: WeakMap<Cert, boolean>;
}

function parseCertificate(der: Uint8Array): Cert {
  const top = readTlv(der, 0, der.length);
  const [tbsT, algT, sigT] = kids(want(top, 0x30, "Certificate"));
  const tbsParts = kids(want(tbsT, 0x30, "TBSCertificate"));
  let i = 0;
  let version = 1;
  if (tbsParts[0]?.tag === 0xa0) {
    version = smallInt(kids(tbsParts[0])[0]) + 1;
    i++;
  }
  const serial = integerHex(tbsParts[i++]);
  const innerAlg = want(tbsParts[i++], 0x30, "signature AlgorithmIdentifier");
  const issuer = parseName(tbsParts[i++]);
  const [nb, na] = kids(want(tbsParts[i++], 0x30, "Validity"));
  if (!nb || !na) throw new DerError("bad Validity");
  const subject = parseName(tbsParts[i++]);
  const spki = whole(want(tbsParts[i++], 0x30, "SubjectPublicKeyInfo"));
  let extensions: Extension[] = [];
  for (; i < tbsParts.length; i++) {
    if (tbsParts[i].tag === 0xa3) extensions = parseExtensions(kids(tbsParts[i])[0]);
  }
  const sig = bitString(sigT);
  if (sig.unused !== 0) throw new DerError("signature BIT STRING with unused bits");
  const cert: Cert = {
    der,
    tbs: whole(tbsT),
    sigAlgOid: oid(kids(want(algT, 0x30, "signatureAlgorithm"))[0]),
    algIdsAgree: bytesEqual(whole(algT), whole(innerAlg)),
    signature: sig.bytes,
    version,
    serial,
    issuer,
    subject,
    notBefore: time(nb),
    notAfter: time(na),
    spki,
    unhandledCritical: [],
    selfIssued: false,
    selfSigned: false,
    verifiedBy: new WeakMap(),
  };
  for (const ext of extensions) {
    if (ext.critical && !HANDLED_CERT_EXTENSIONS.has(ext.id)) cert.unhandledCritical.push(ext.id);
    switch (ext.id) {
      case "2.5.29.19": {
        const parts = ext.raw.length ? kids(want(ext.value, 0x30, "BasicConstraints")) : [];
        let j = 0;
        cert.basicConstraintsCa = false;
        if (parts[j]?.tag === 0x01) cert.basicConstraintsCa = content(parts[j++])[0] !== 0;
        if (parts[j]?.tag === 0x02 && cert.basicConstraintsCa) cert.pathLen = smallInt(parts[j]);
        break;
      }
      case "2.5.29.15": {
        const { bytes } = bitString(ext.value);
        const set = new Set<number>();
        for (let bit = 0; bit < bytes.length * 8; bit++) if ((bytes[bit >> 3] >> (7 - (bit & 7))) & 1) set.add(bit);
        cert.keyUsage = set;
        break;
      }
      case "2.5.29.14":
        cert.skid = hex(content(want(ext.value, 0x04, "SubjectKeyIdentifier")));
        break;
      case "2.5.29.35":
        cert.akid = parseAkid(ext.value);
        break;
    }
  }
  cert.selfIssued = cert.subject.canon === cert.issuer.canon && akidMatches(cert, cert.akid);
  // EXFLAG_SS: self-issued, and (if keyUsage is present) allowed to sign certificates.
  cert.selfSigned = cert.selfIssued && (cert.keyUsage === undefined || cert.keyUsage.has(KU_KEY_CERT_SIGN));
  return cert;
}

interface Crl {
  tbs: Uint8Array;
  sigAlgOid: string;
  algIdsAgree: boolean;
  signature: Uint8Array;
  issuer: Name;
  thisUpdate: number;
  nextUpdate?: number;
  revoked: Map<string, { removeFromCrl: boolean }>;
  isDelta: boolean;
  unhandledCritical: boolean;
  akid?: Akid;
  verifiedBy: WeakMap<Cert, boolean>;
}

function parseCrl(der: Uint8Array): Crl {
  const top = readTlv(der, 0, der.length);
  const [tbsT, algT, sigT] = kids(want(top, 0x30, "CertificateList"));
  const parts = kids(want(tbsT, 0x30, "TBSCertList"));
  let i = 0;
  if (parts[i]?.tag === 0x02) i++; // version
  const innerAlg = want(parts[i++], 0x30, "signature AlgorithmIdentifier");
  const issuer = parseName(parts[i++]);
  const thisUpdate = time(parts[i++]);
  let nextUpdate: number | undefined;
  if (parts[i] && (parts[i].tag === 0x17 || parts[i].tag === 0x18)) nextUpdate = time(parts[i++]);
  const revoked = new Map<string, { removeFromCrl: boolean }>();
  let unhandledCritical = false;
  if (parts[i]?.tag === 0x30) {
    for (const entry of kids(parts[i++])) {
      const [serialT, , extT] = kids(want(entry, 0x30, "revoked entry"));
      let removeFromCrl = false;
      if (extT) {
        for (const ext of parseExtensions(extT)) {
          if (ext.id === "2.5.29.21") removeFromCrl = content(want(ext.value, 0x0a, "CRLReason"))[0] === 8;
          if (ext.critical && ext.id !== "2.5.29.29") unhandledCritical = true;
        }
      }
      revoked.set(integerHex(serialT), { removeFromCrl });
    }
  }
  let isDelta = false;
  let akid: Akid | undefined;
  if (parts[i]?.tag === 0xa0) {
    for (const ext of parseExtensions(kids(parts[i])[0])) {
      if (ext.id === "2.5.29.27") isDelta = true;
      if (ext.id === "2.5.29.35") akid = parseAkid(ext.value);
      // OpenSSL handles critical IDP, AKID and delta CRL indicator; anything else is "unhandled".
      if (ext.critical && !["2.5.29.28", "2.5.29.35", "2.5.29.27"].includes(ext.id)) unhandledCritical = true;
    }
  }
  const sig = bitString(sigT);
  return {
    tbs: whole(tbsT),
    sigAlgOid: oid(kids(want(algT, 0x30, "signatureAlgorithm"))[0]),
    algIdsAgree: bytesEqual(whole(algT), whole(innerAlg)),
    signature: sig.bytes,
    issuer,
    thisUpdate,
    nextUpdate,
    revoked,
    isDelta,
    unhandledCritical,
    akid,
    verifiedBy: new WeakMap(),
  };
}
