// The tiny training most workflow tests run: LeNet-300-100 on 320 MNIST images (100 test images), batch 32, SGD
// with momentum. A test gives its own seed (so its runs and levels are its own) and the step counts it needs.
export function tinyLenetTrain(seed: number, steps: { iterations: number; evalEvery: number }) {
  return {
    model: 'lenet-300-100' as const,
    dataset: 'mnist' as const,
    optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0.9 },
    batchSize: 32,
    ...steps,
    seed,
    trainLimit: 320,
    testLimit: 100,
  };
}
