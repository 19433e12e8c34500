import { loadManifest, parseManifest } from "./schema/manifest.ts";
const a = loadManifest("manifests/example-two-brokers.yaml", {});
console.log(a.ok ? JSON.stringify(a.manifest.bridges[2]) : a.errors.join("\n"));
const b = loadManifest("manifests/broken-two-brokers.yaml", {});
console.log(b.ok ? "OK?!" : b.errors.join("\n"));
const c = parseManifest("brokers:\n  main:\n    url: amqp://localhost\nbridges:\n  - name: x\n    kind: zmq_to_amqp\n    zmq: { endpoints: [tcp://localhost:9940] }\n    amqp: { broker: main }\n", { file: "min.yaml", env: {} });
console.log(JSON.stringify(c));
