// The reward chart of the training page: each step's mean reward over
// time, with a band of ± one standard deviation. uPlot draws on a canvas
// and sizes elements through CSSOM only, so it runs under the strict CSP;
// it is loaded with the training page, not with the app.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from '../dom';
import { score } from '../format';

export interface RewardPoint {
  at: number; // ms since the epoch
  mean: number;
  std: number;
  step: number;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export interface RewardChart {
  element: HTMLElement;
  dispose(): void;
}

/** A figure with the chart, a caption and a text summary for screen readers. */
export function rewardChart(points: RewardPoint[]): RewardChart {
  const sorted = [...points].sort((a, b) => a.at - b.at || a.step - b.step);
  const plot = h('div', { class: 'chart-plot' });
  const latest = sorted.at(-1);
  const lo = Math.min(...sorted.map((p) => p.mean));
  const hi = Math.max(...sorted.map((p) => p.mean));
  const description = latest
    ? `Mean reward of ${sorted.length} training ${sorted.length === 1 ? 'step' : 'steps'}, between ${score(lo)} and ${score(hi)}; the latest step ${latest.step} had ${score(latest.mean)}.`
    : 'No steps.';
  const figure = h(
    'figure',
    { class: 'chart', dataset: { points: String(sorted.length) } },
    h('figcaption', null, 'Reward per step (mean, with ± one standard deviation)'),
    h('div', { role: 'img', 'aria-label': description }, plot),
  );

  let chart: uPlot | null = null;
  let observer: ResizeObserver | null = null;

  const build = (): void => {
    if (chart || !figure.isConnected) return;
    const accent = cssVar('--accent', '#2563eb');
    const band = cssVar('--accent-soft', 'rgba(37, 99, 235, 0.15)');
    const axis = cssVar('--muted', '#6b7280');
    const grid = cssVar('--border', '#e5e7eb');
    const xs = sorted.map((p) => p.at / 1000);
    const data: uPlot.AlignedData = [
      xs,
      sorted.map((p) => p.mean),
      sorted.map((p) => p.mean + p.std),
      sorted.map((p) => p.mean - p.std),
    ];
    const axisStyle = { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts: uPlot.Options = {
      width: Math.max(280, plot.clientWidth || 600),
      height: 260,
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(-1, min), Math.max(1, max)] } },
      axes: [axisStyle, { ...axisStyle, values: (_u, ticks) => ticks.map((t) => score(t)) }],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      series: [
        { label: 'Time' },
        { label: 'Reward mean', stroke: accent, width: 2, points: { show: true, size: 7, fill: accent }, value: (_u, v) => score(v) },
        { label: '+1 std', stroke: band, width: 1, dash: [4, 4], points: { show: false }, value: (_u, v) => score(v) },
        { label: '−1 std', stroke: band, width: 1, dash: [4, 4], points: { show: false }, value: (_u, v) => score(v) },
      ],
      bands: [{ series: [2, 3], fill: band }],
    };
    chart = new uPlot(opts, data, plot);
    figure.dataset.rendered = 'true';
    observer = new ResizeObserver(() => {
      const width = Math.max(280, plot.clientWidth);
      if (chart && Math.abs(chart.width - width) > 2) chart.setSize({ width, height: 260 });
    });
    observer.observe(plot);
  };

  // The plot's width comes from the page: build once the figure is in it.
  let tries = 0;
  const whenAttached = (): void => {
    if (figure.isConnected) build();
    else if (tries++ < 120) requestAnimationFrame(whenAttached);
  };
  requestAnimationFrame(whenAttached);
  return {
    element: figure,
    dispose: () => {
      observer?.disconnect();
      chart?.destroy();
      chart = null;
    },
  };
}
