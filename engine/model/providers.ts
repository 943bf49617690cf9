/**
 * Execution providers from device strings (`cpu`, `cuda:N`, `webgpu:N`) and
 * the ONNX Runtime session options for them. An unavailable provider is an
 * error (ONNX Runtime is never asked to fall back to another one).
 *
 * @module
 */
import type * as ort from "onnxruntime-node";
import { UserError } from "../errors.ts";

/** A parsed device string. */
export interface Device {
  name: "cpu" | "cuda" | "webgpu";
  id: number;
  /** What to do when the provider is missing. */
  howToEnable: string;
}

const HOW: Record<Device["name"], string> = {
  cpu: "",
  cuda:
    "Install onnxruntime-node's CUDA binaries (reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 and " +
    "scripts allowed for onnxruntime-node), with CUDA 12 and cuDNN 9 on the library path, or use device: cpu.",
  webgpu: "WebGPU needs a GPU adapter visible to this process (Vulkan drivers on Linux); " +
    "use device: cpu or cuda:N otherwise.",
};

/** Parses `cpu`, `cuda:N` or `webgpu:N` (a bare `cuda`/`webgpu` means device 0). */
export function parseDevice(device: string): Device {
  const m = /^(cpu|cuda|webgpu)(?::(\d+))?$/.exec(device.trim());
  if (!m || (m[1] === "cpu" && m[2] !== undefined)) {
    throw new UserError(
      `device "${device}" is not valid; use cpu, cuda:N or webgpu:N (N = device number).`,
    );
  }
  const name = m[1] as Device["name"];
  return { name, id: Number(m[2] ?? 0), howToEnable: HOW[name] };
}

/**
 * Session options for a device: one provider, no fallback, all graph
 * optimizations, ONNX Runtime's CPU memory arena on and memory patterns off.
 * `MEMO_ORT_PROFILE=<prefix>` writes ONNX Runtime's per-node profile (JSON, one
 * file per session) for performance work.
 */
export function sessionOptions(
  device: Device,
  threads: number,
): ort.InferenceSession.SessionOptions {
  const profile = Deno.env.get("MEMO_ORT_PROFILE");
  const provider: ort.InferenceSession.ExecutionProviderConfig = device.name === "cuda"
    ? { name: "cuda", deviceId: device.id }
    : device.name;
  return {
    executionProviders: [provider],
    intraOpNumThreads: Math.max(1, threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    // The arena reuses the head's chunk buffers and the activations instead of fresh
    // pages from the system each time (measured at Pythia-70M's shape, batch 64, side
    // by side: extractable 73 rows/s with it and 63 without, peak RSS 615 against 862
    // MB; full 60 against 52, 726 against 745 MB). Memory patterns are off: shapes
    // change every greedy step.
    enableCpuMemArena: true,
    enableMemPattern: false,
    logSeverityLevel: 3,
    ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
  };
}
