// ONNX Runtime (CPU) peer of fcn, on fcn's own ONNX export. Two uses:
//   node ort_peer.js MODEL.onnx --time --shape 1,C,H,W --batch N --runs R --warmup W --threads T
//     times N single-image runs per timed run on a uniform random input; prints one JSON object
//     {"ms": [...], "peak_rss_mib": ..., "onnxruntime": version}
//   node ort_peer.js MODEL.onnx --run IN.f32 --shape 1,C,H,W --output OUT.f32 [--threads T]
//     runs the raw little-endian float32 input, writes the first output the same way; prints
//     {"shape": [...]}
// Every failure exits 1 with one line on stderr.
"use strict";
const fs = require("fs");

function fail(message) {
  process.stderr.write("ort_peer: " + message + "\n");
  process.exit(1);
}

function parse(argv) {
  const a = { model: argv[0], threads: 0, runs: 5, warmup: 1, batch: 1 };
  for (let i = 1; i < argv.length; ++i) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === "--time") a.time = true;
    else if (flag === "--run") (a.input = value), ++i;
    else if (flag === "--output") (a.output = value), ++i;
    else if (flag === "--shape") (a.shape = value.split(",").map(Number)), ++i;
    else if (["--threads", "--runs", "--warmup", "--batch"].includes(flag)) (a[flag.slice(2)] = Number(value)), ++i;
    else fail("unknown argument " + flag);
  }
  if (!a.model || !a.shape || a.shape.some((d) => !(d > 0))) fail("usage: MODEL.onnx --time|--run IN --shape 1,C,H,W ...");
  return a;
}

async function main() {
  let ort;
  try {
    ort = require("onnxruntime-node");
  } catch (e) {
    fail("onnxruntime-node is not installed (scripts/install-deps.sh installs it): " + e.message);
  }
  const a = parse(process.argv.slice(2));
  const options = { graphOptimizationLevel: "all", executionMode: "sequential", interOpNumThreads: 1 };
  if (a.threads > 0) options.intraOpNumThreads = a.threads;
  const session = await ort.InferenceSession.create(a.model, options);
  const count = a.shape.reduce((x, y) => x * y, 1);
  let data;
  if (a.input !== undefined) {
    const bytes = fs.readFileSync(a.input);
    if (bytes.length !== 4 * count) fail(a.input + ": " + bytes.length + " bytes, expected " + 4 * count);
    data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  } else {
    data = new Float32Array(count);
    for (let i = 0; i < count; ++i) data[i] = Math.random();
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, a.shape) };
  if (!a.time) {
    const out = (await session.run(feeds))[session.outputNames[0]];
    fs.writeFileSync(a.output, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
    console.log(JSON.stringify({ shape: out.dims }));
    return;
  }
  const ms = [];
  for (let i = 0; i < a.warmup + a.runs; ++i) {
    const start = process.hrtime.bigint();
    for (let b = 0; b < a.batch; ++b) await session.run(feeds);
    if (i >= a.warmup) ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const version = require("onnxruntime-node/package.json").version;
  console.log(JSON.stringify({ ms: ms, peak_rss_mib: process.resourceUsage().maxRSS / 1024, onnxruntime: version }));
}

main().catch((e) => fail(e.message.split("\n")[0]));
