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
 * optimizations; ONNX Runtime's CPU memory arena only where `arena` is set.
 * `MEMO_ORT_PROFILE=<prefix>` writes ONNX Runtime's per-node profile (JSON, one
 * file per session) for performance work.
 */
export function sessionOptions(
  device: Device,
  threads: number,
  arena = true,
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
    // See LoadOptions.arena (engine/model/model.ts) for when the arena pays. Memory
    // patterns are off: shapes change every greedy step.
    enableCpuMemArena: arena,
    enableMemPattern: false,
    logSeverityLevel: 3,
    ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
  };
}
