// The services a test talks to: the ones test/run.ts started (or was given) and exported.
import { resolveEndpoints, type StackEndpoints } from '../../infra/endpoints';

export function testEndpoints(): StackEndpoints {
  if (!process.env.TEMPORAL_ADDRESS || !process.env.S3_ENDPOINT) {
    throw new Error(
      'TEMPORAL_ADDRESS / S3_ENDPOINT are not set: run the tests with `npm test` ' +
        '(test/run.ts starts an isolated Temporal + MinIO for the run), or set them to existing services',
    );
  }
  return resolveEndpoints(process.env);
}
