/**
 * A tiny Vision Transformer for 28×28×1 inputs: the distillation student (LIB-KD, arXiv 2310.00369; DeiT's and
 * CiT's distillation tokens, ../shared/REFERENCES.md).
 *
 *   patches  p×p, flattened, linear to D                         [B, (28/p)², p²]  → [B, P, D]
 *   tokens   a class token and T distillation tokens (one per teacher), prepended; learned position embedding
 *   blocks   depth × pre-norm: x += MHSA(LN(x)); x += MLP(LN(x)), MLP = fc(D → r·D), GELU, fc(r·D → D)
 *   heads    final LN; one linear head per token (class head, then one per distillation token)
 *
 * The prediction is the average of the heads' probabilities (as LIB-KD and DeiT at test time), returned as its log
 * so that it serves as logits (argmax, cross-entropy); `predict: 'class'` uses the class head alone. With T = 0
 * it is a plain ViT. `tokenLogits` gives every head's logits, for the distillation losses.
 *
 * Initialisation (DeiT/timm): weights, the tokens and the position embedding N(0, 0.02²); LayerNorm gains 1;
 * biases 0. Linear weights are prunable; embeddings, gains and biases are not.
 *
 * Regularisation (off by default): `dropout` after the attention's output projection and after the MLP (timm's
 * proj_drop), and `dropPath` (stochastic depth) on both residual branches, its rate rising linearly from 0 in the
 * first block to `dropPath` in the last (DeiT). Masks are drawn from the step's NoiseSeed, one derived seed per
 * place, so a training step is a pure function of the weights, the batch and the step (exact resume); evaluation
 * uses no mask.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import '../gradients.js';
import { MlInputError } from '../errors.js';
import {
  dropPath,
  dropPathShape,
  dropout,
  dropoutMultiplier,
  gelu,
  layerNorm,
  linear,
  patchify,
  selfAttention,
} from '../ops/transformer.js';
import { Rng, deriveSeed } from '../rng.js';
import { hostTensor, sizeOf, type NamedTensors } from '../tensors.js';
import { paramGetter } from './params.js';
import { MNIST_INPUT, type ModelDef, type ModelInput, type NoiseSeed, type ParamSpec } from './types.js';

const INIT_STD = 0.02;

export const vitConfigSchema = z
  .object({
    /** Patch side in pixels; must divide the image's height and width (vitModel checks). */
    patch: z.number().int().min(1),
    dim: z.number().int().min(1),
    depth: z.number().int().min(1),
    heads: z.number().int().min(1),
    mlpRatio: z.number().positive(),
    /** Distillation tokens, one per teacher (0: a plain ViT). */
    distillTokens: z.number().int().min(0).max(8),
    /** The prediction: the average of all heads' probabilities, or the class head's. */
    predict: z.enum(['average', 'class']).default('average'),
    /**
     * Feature distillation: the patch tokens, after the final LayerNorm, projected by a learned linear map to this
     * many channels (a teacher's feature map, one patch per position). Absent: no projection.
     */
    featureChannels: z.number().int().min(1).optional(),
    /** Dropout rate after attention and MLP outputs while training. */
    dropout: z.number().min(0).lt(1).optional(),
    /** Stochastic-depth rate of the last block (0 in the first, linear in between). */
    dropPath: z.number().min(0).lt(1).optional(),
  })
  .strict()
  .refine((c) => c.dim % c.heads === 0, { message: 'dim must be a multiple of heads', path: ['heads'] })
  .refine((c) => Number.isInteger(c.dim * c.mlpRatio), {
    message: 'dim × mlpRatio must be an integer',
    path: ['mlpRatio'],
  });

export type VitConfig = z.output<typeof vitConfigSchema>;

export interface VitModelDef extends ModelDef {
  config: VitConfig;
  /** Logits of every head, [B, classes] each: the class head first, then one per distillation token. */
  tokenLogits(
    params: Record<string, tf.Tensor>,
    x: tf.Tensor,
    training: boolean,
    noise?: NoiseSeed,
  ): tf.Tensor2D[];
  /**
   * tokenLogits, and with `featureChannels` the projected patch tokens [B, patches, featureChannels] in row-major
   * patch order (the order of a [B, h, w, c] feature map's positions); null without.
   */
  tokenOutputs(
    params: Record<string, tf.Tensor>,
    x: tf.Tensor,
    training: boolean,
    noise?: NoiseSeed,
  ): { heads: tf.Tensor2D[]; patches: tf.Tensor3D | null };
  /** The patch grid's side: the image's side / patch. */
  grid: number;
}

function vitParams(c: VitConfig, input: ModelInput): ParamSpec[] {
  const INPUT = input.shape;
  const d = c.dim;
  const hidden = d * c.mlpRatio;
  const patches = (INPUT[0] / c.patch) * (INPUT[1] / c.patch);
  const out: ParamSpec[] = [];
  // `torch` is the parameter's name in lth_models.py's Vit (a module path), without '.weight'/'.bias'.
  const linear = (name: string, torch: string, shape: [number, number], prunable = true) => {
    out.push({
      name: `${name}.weight`,
      shape,
      kind: 'weight',
      prunable,
      torch: { name: `${torch}.weight`, layout: 'linear' },
    });
    out.push({
      name: `${name}.bias`,
      shape: [shape[1]],
      kind: 'bias',
      prunable: false,
      torch: { name: `${torch}.bias`, layout: 'as-is' },
    });
  };
  const norm = (name: string, torch: string) => {
    out.push({
      name: `${name}.gain`,
      shape: [d],
      kind: 'gain',
      prunable: false,
      torch: { name: `${torch}.weight`, layout: 'as-is' },
    });
    out.push({
      name: `${name}.bias`,
      shape: [d],
      kind: 'bias',
      prunable: false,
      torch: { name: `${torch}.bias`, layout: 'as-is' },
    });
  };
  // Learned embeddings: PyTorch keeps a leading batch axis of 1 to broadcast over.
  const embedding = (name: string, rows: number) =>
    out.push({
      name,
      shape: [rows, d],
      kind: 'weight',
      prunable: false,
      torch: { name, layout: { shape: [1, rows, d] } },
    });
  linear('patch', 'embed', [c.patch * c.patch * INPUT[2], d]);
  embedding('tokens', 1 + c.distillTokens);
  embedding('position', 1 + c.distillTokens + patches);
  for (let i = 1; i <= c.depth; i++) {
    const block = `blocks.${i - 1}`;
    norm(`block${i}.norm1`, `${block}.norm1`);
    for (const m of ['query', 'key', 'value', 'out']) linear(`block${i}.attn.${m}`, `${block}.${m}`, [d, d]);
    norm(`block${i}.norm2`, `${block}.norm2`);
    linear(`block${i}.mlp.fc1`, `${block}.fc1`, [d, hidden]);
    linear(`block${i}.mlp.fc2`, `${block}.fc2`, [hidden, d]);
  }
  norm('norm', 'norm');
  for (let t = 0; t <= c.distillTokens; t++) linear(headName(t), `heads.${t}`, [d, input.classes]);
  if (c.featureChannels !== undefined) linear('features', 'features', [d, c.featureChannels], false);
  return out;
}

/** The class head is `head`; distillation token t's is `dist<t>`. */
function headName(token: number): string {
  return token === 0 ? 'head' : `dist${token}`;
}

/** A ViT with this configuration; `name` is what it is registered and recorded as. */
export function vitModel(
  name: string,
  config: z.input<typeof vitConfigSchema>,
  input: ModelInput = MNIST_INPUT,
): VitModelDef {
  const parsed = vitConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MlInputError(`${name}: ${issue?.path.join('.') || '(config)'}: ${issue?.message}`);
  }
  const c = parsed.data;
  const INPUT = input.shape;
  if (INPUT[0] !== INPUT[1] || INPUT[0] % c.patch !== 0) {
    const sides = Array.from({ length: INPUT[0] }, (_, i) => i + 1).filter((p) => INPUT[0] % p === 0);
    throw new MlInputError(
      INPUT[0] !== INPUT[1]
        ? `${name}: a ${INPUT[0]}×${INPUT[1]} image is not square; the ViT's patch grid is`
        : `${name}: patch: must divide ${INPUT[0]} (${sides.join(', ')})`,
    );
  }
  const params = vitParams(c, input);
  const param = paramGetter(name);
  const tokens = 1 + c.distillTokens;

  const grid = INPUT[0] / c.patch;
  const patchCount = grid * grid;

  const dropRate = c.dropout ?? 0;
  const pathRate = (block: number) => (c.depth > 1 ? ((c.dropPath ?? 0) * (block - 1)) / (c.depth - 1) : 0);
  const regularised = dropRate > 0 || (c.dropPath ?? 0) > 0;

  function tokenOutputs(
    p: Record<string, tf.Tensor>,
    x: tf.Tensor,
    training: boolean,
    noise: NoiseSeed | undefined,
    // The heads alone (prediction, tokenLogits) skip the patch projection.
    withPatches = true,
  ): { heads: tf.Tensor2D[]; patches: tf.Tensor3D | null } {
    if (training && regularised && !noise) {
      throw new MlInputError(`${name}: dropout and drop-path need the step's noise seed while training`);
    }
    // The residual branch of block i's attention ('attn') or MLP ('mlp'), with its dropout and drop-path: drawn
    // here from the seed, or given (noiseTensors, the same values).
    const branch = (t: tf.Tensor, block: number, where: string): tf.Tensor => {
      if (!training || !noise || !regularised) return t;
      const given = noise.tensors;
      if (given) {
        const mask = (what: string) => {
          const m = given[`block${block}.${where}.${what}`];
          if (!m) throw new MlInputError(`${name}: the step's noise lacks block${block}.${where}.${what}`);
          return m;
        };
        const dropped = dropRate > 0 ? tf.mul(t, mask('dropout')) : t;
        return pathRate(block) > 0 ? tf.mul(dropped, mask('path')) : dropped;
      }
      const seed = (what: string) => deriveSeed(noise.seed, `block${block}.${where}.${what}`);
      return dropPath(dropout(t, dropRate, seed('dropout')), pathRate(block), seed('path'));
    };
    // tidy keeps tensors in arrays and objects, not nulls: the patches travel as a list of zero or one.
    const out = tf.tidy(() => {
      const images = tf.reshape(x, [-1, ...INPUT]) as tf.Tensor4D;
      const batch = images.shape[0];
      const embedded = linear(patchify(images, c.patch), param(p, 'patch.weight'), param(p, 'patch.bias'));
      // The learned tokens, the same for every image: broadcast by adding to zeros (Add's gradient sums them).
      const prefix = tf.add(tf.zeros([batch, tokens, c.dim]), param(p, 'tokens'));
      let h = tf.add(tf.concat([prefix, embedded], 1), param(p, 'position')) as tf.Tensor3D;
      for (let i = 1; i <= c.depth; i++) {
        const b = `block${i}`;
        // One tidy per block frees its temporaries at once (the tape keeps what backprop needs).
        h = tf.tidy(() => {
          const n1 = layerNorm(h, param(p, `${b}.norm1.gain`), param(p, `${b}.norm1.bias`)) as tf.Tensor3D;
          const attended = selfAttention(
            n1,
            {
              query: param(p, `${b}.attn.query.weight`),
              queryBias: param(p, `${b}.attn.query.bias`),
              key: param(p, `${b}.attn.key.weight`),
              keyBias: param(p, `${b}.attn.key.bias`),
              value: param(p, `${b}.attn.value.weight`),
              valueBias: param(p, `${b}.attn.value.bias`),
              out: param(p, `${b}.attn.out.weight`),
              outBias: param(p, `${b}.attn.out.bias`),
            },
            c.heads,
          );
          const h1 = tf.add(h, branch(attended, i, 'attn')) as tf.Tensor3D;
          const n2 = layerNorm(h1, param(p, `${b}.norm2.gain`), param(p, `${b}.norm2.bias`)) as tf.Tensor3D;
          const up = gelu(linear(n2, param(p, `${b}.mlp.fc1.weight`), param(p, `${b}.mlp.fc1.bias`)));
          const down = linear(
            up as tf.Tensor3D,
            param(p, `${b}.mlp.fc2.weight`),
            param(p, `${b}.mlp.fc2.bias`),
          );
          return tf.add(h1, branch(down, i, 'mlp')) as tf.Tensor3D;
        });
      }
      // Only the token positions feed the heads: normalise those (and the patches when they are projected; the
      // normalisation is per position, so the token rows come out the same either way).
      const features = withPatches && c.featureChannels !== undefined;
      const normed = layerNorm(
        features ? h : tf.slice(h, [0, 0, 0], [batch, tokens, c.dim]),
        param(p, 'norm.gain'),
        param(p, 'norm.bias'),
      );
      const patches = features
        ? (linear(
            tf.slice(normed, [0, tokens, 0], [batch, patchCount, c.dim]) as tf.Tensor3D,
            param(p, 'features.weight'),
            param(p, 'features.bias'),
          ) as tf.Tensor3D)
        : null;
      const heads = Array.from({ length: tokens }, (_, t) => {
        const token = tf.reshape(tf.slice(normed, [0, t, 0], [batch, 1, c.dim]), [batch, c.dim]);
        const head = headName(t);
        return tf.add(
          tf.matMul(token as tf.Tensor2D, param(p, `${head}.weight`) as tf.Tensor2D),
          param(p, `${head}.bias`),
        ) as tf.Tensor2D;
      });
      return { heads, patches: patches ? [patches] : [] };
    });
    return { heads: out.heads, patches: out.patches[0] ?? null };
  }
  const tokenLogits = (
    p: Record<string, tf.Tensor>,
    x: tf.Tensor,
    training: boolean,
    noise: NoiseSeed | undefined,
  ): tf.Tensor2D[] => tokenOutputs(p, x, training, noise, false).heads;

  return {
    name,
    config: c,
    stochastic: regularised,
    noiseTensors(noise: NoiseSeed, batch: number): Record<string, tf.Tensor> {
      const out: Record<string, tf.Tensor> = {};
      if (!regularised) return out;
      // Every branch is [batch, tokens + patches, dim]: the shapes forward's masks are drawn for.
      const shape = [batch, tokens + patchCount, c.dim];
      for (let block = 1; block <= c.depth; block++) {
        for (const where of ['attn', 'mlp']) {
          const key = `block${block}.${where}`;
          const seed = (what: string) => deriveSeed(noise.seed, `${key}.${what}`);
          if (dropRate > 0) out[`${key}.dropout`] = dropoutMultiplier(shape, dropRate, seed('dropout'));
          if (pathRate(block) > 0)
            out[`${key}.path`] = dropoutMultiplier(dropPathShape(shape), pathRate(block), seed('path'));
        }
      }
      return out;
    },
    inputShape: [...INPUT],
    numClasses: input.classes,
    params,
    init(seed: number): NamedTensors {
      const out: NamedTensors = {};
      for (const s of params) {
        const t = hostTensor('float32', s.shape);
        if (s.kind === 'gain') t.data.fill(1);
        else if (s.kind === 'weight') {
          const rng = new Rng(deriveSeed(seed, 'init', s.name));
          for (let i = 0; i < sizeOf(s.shape); i++) t.data[i] = rng.normal() * INIT_STD;
        }
        out[s.name] = t;
      }
      return out;
    },
    grid,
    tokenLogits: (p, x, training, noise) => tokenLogits(p, x, training, noise),
    tokenOutputs: (p, x, training, noise) => tokenOutputs(p, x, training, noise),
    forward(p, x, training, noise) {
      return tf.tidy(() => {
        const heads = tokenLogits(p, x, training, noise);
        if (heads.length === 1 || c.predict === 'class') return heads[0] as tf.Tensor2D;
        const sum = heads.map((l) => tf.softmax(l)).reduce((a, b) => tf.add(a, b));
        // + 1e-30: a probability that underflowed to 0 gives a finite (very negative) logit, not -inf.
        return tf.log(tf.add(tf.mul(sum, 1 / heads.length), 1e-30)) as tf.Tensor2D;
      });
    },
  };
}

/** The default student: patch 4 (49 patches), dim 64, depth 4, 4 heads, MLP ratio 2, no distillation token. */
export const VIT_TINY: z.input<typeof vitConfigSchema> = {
  patch: 4,
  dim: 64,
  depth: 4,
  heads: 4,
  mlpRatio: 2,
  distillTokens: 0,
};

export const vitTiny = (input?: ModelInput): VitModelDef => vitModel('vit-tiny', VIT_TINY, input);
