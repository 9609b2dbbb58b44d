export function workerLog(role: string): (msg: string) => void {
  return (msg) => process.stderr.write(`${new Date().toISOString()} [${role} worker] ${msg}\n`);
}
