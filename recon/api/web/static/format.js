// Text for people: progress lines, durations and the metrics table's rows.

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes} min ${whole % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatValue(value) {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value.toLocaleString('en');
    return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e6
      ? String(Number(value.toPrecision(4))) : value.toExponential(3);
  }
  if (Array.isArray(value)) return value.map(formatValue).join(', ');
  return String(value);
}

/** "stage · step 120 / 300 · loss 0.0123 · about 12 s left" from a job's progress. */
export function progressText(job) {
  const progress = job.progress || {};
  const parts = [progress.stage || job.status];
  if (progress.total) parts.push(`step ${progress.step} / ${progress.total}`);
  if (progress.loss !== null && progress.loss !== undefined) {
    parts.push(`loss ${formatValue(progress.loss)}`);
  }
  const eta = formatDuration(progress.eta_seconds);
  if (eta && !['succeeded', 'failed', 'canceled'].includes(job.status)) parts.push(`about ${eta} left`);
  return parts.join(' · ');
}

/** The rows of a nested metrics dict: [["fit_to_input › mean", "0.0123"], ...]. */
export function metricRows(metrics, prefix = '') {
  const rows = [];
  for (const [key, value] of Object.entries(metrics || {})) {
    const name = prefix ? `${prefix} › ${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      rows.push(...metricRows(value, name));
    } else {
      rows.push([name, formatValue(value)]);
    }
  }
  return rows;
}
