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

/** Session options for a device: one provider, no fallback, all graph optimizations, no arena. */
export function sessionOptions(
  device: Device,
  threads: number,
): ort.InferenceSession.SessionOptions {
  const provider: ort.InferenceSession.ExecutionProviderConfig = device.name === "cuda"
    ? { name: "cuda", deviceId: device.id }
    : device.name;
  return {
    executionProviders: [provider],
    intraOpNumThreads: Math.max(1, threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    // Greedy steps change shapes every step: ONNX Runtime's CPU arena and memory
    // patterns then only fragment (measured at Pythia-70M's shape, batch 64, side by
    // side: full mode 32 rows/s with both, 45 without; extractable unchanged).
    enableCpuMemArena: false,
    enableMemPattern: false,
    logSeverityLevel: 3,
  };
}
