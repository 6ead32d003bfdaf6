// What the dashboard (web/ui/src/main.ts) exposes to its browser test: every render of the table
// or the chart, with its performance.now().
export {};
declare global {
  interface Window {
    __dashboard?: { renders: { part: string; at: number }[] };
  }
}
