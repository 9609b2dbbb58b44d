/** Stored weights in other frameworks' layouts. See README.md here. */
export {
  fromTorch,
  permuteAxes,
  toTorch,
  torchMetadata,
  TORCH_EXPORT_FORMAT,
  type TorchExportable,
} from './torch.js';
