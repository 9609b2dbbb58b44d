/** Heavy ML work: one slot per device. */
export const COMPUTE_TASK_QUEUE = 'lth-compute';
/** Workflows and small activities. */
export const LIGHT_TASK_QUEUE = 'lth-light';
