// Everything that touches tfjs-node's internals (its binding, its backend's fields, its compiled protos) lives in
// this folder, behind one check: nativeSupport() (the pinned tfjs-node release, the CPU build, the binding calls).
export { nativeBackend, nativeSupport, PINNED_TFJS_NODE, type NativeBackend } from './graph.js';
export { nativeDenseStep, slotsZeroWherePruned, type NativeDenseStep } from './dense-step.js';
export { canTrace, traceStep, type Trace, type TracedStep } from './traced-step.js';
export { softmaxCrossEntropy } from './kernels.js';
