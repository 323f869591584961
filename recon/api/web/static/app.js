// The page: paste a key, submit a point cloud, follow the job, look at the mesh, compare two.
// The 3D view (viewer.js, three.js) is loaded on its own: when three.js is not installed the
// rest of the page still works and says how to enable the view.

import { apiBlob, apiFetch, apiJson, apiKey, inputPath, jobPath, meshPath, setApiKey }
  from './api.js';
import { el, showError } from './dom.js';
import { followJob } from './events.js';
import { metricRows, progressText } from './format.js';
import { JobList } from './jobs.js';
import { submitForm } from './submit.js';

const $ = (id) => document.getElementById(id);
const FINAL = new Set(['succeeded', 'failed', 'canceled']);

const viewerModule = import('./viewer.js').catch((exc) => {
  console.warn('3D view unavailable:', exc);
  $('viewer-unavailable').hidden = false;
  return null;
});

const jobs = new JobList({
  list: $('jobs'),
  error: $('jobs-error'),
  compareButton: $('compare-button'),
  onOpen: (id) => openJob(id),
  onCompare: (a, b) => openCompare(a, b),
});

// --- the API key -------------------------------------------------------------------------------
function setUpKey() {
  const input = $('api-key');
  input.value = apiKey();
  let timer = null;
  input.addEventListener('input', () => {
    setApiKey(input.value.trim());
    clearTimeout(timer);
    timer = setTimeout(() => jobs.refresh(), 400);
  });
  $('key-form').addEventListener('submit', (event) => event.preventDefault());
  $('forget-key').addEventListener('click', () => {
    input.value = '';
    setApiKey('');
    jobs.refresh();
  });
}

// --- one job ---------------------------------------------------------------------------------
let following = null; // the AbortController of the job on screen
let mainViewer = null;

async function viewerIn(container) {
  const module = await viewerModule;
  if (!module) return null;
  try {
    return new module.MeshViewer(container);
  } catch (exc) { // no WebGL in this browser
    console.warn('3D view unavailable:', exc);
    $('viewer-unavailable').textContent = '3D view unavailable: this browser offers no WebGL.';
    $('viewer-unavailable').hidden = false;
    return null;
  }
}

function renderJob(job) {
  $('job-id').textContent = job.id;
  const status = $('job-status');
  status.textContent = job.status;
  status.className = `status status-${job.status}`;
  const progress = $('job-progress');
  progress.value = job.status === 'succeeded' ? 1 : (job.progress?.fraction ?? 0);
  $('progress-text').textContent = progressText(job);
  showError($('job-error'), job.error ? `${job.error.message} (${job.error.code})` : null);
  $('job-warnings').replaceChildren(...(job.warnings || []).map(
    (warning) => el('li', { textContent: warning })));
}

function resetJobView(id) {
  $('job-id').textContent = id;
  $('job-status').textContent = '';
  $('progress-text').textContent = '';
  $('job-progress').value = 0;
  showError($('job-error'), null);
  $('job-warnings').replaceChildren();
  $('downloads').replaceChildren();
  $('metrics').hidden = true;
  $('metrics').tBodies[0].replaceChildren();
  $('viewer-note').textContent = '';
  for (const id of ['toggle-points', 'toggle-support']) $(id).disabled = true;
  $('toggle-support').checked = false;
  $('support-legend').hidden = true;
  if (mainViewer) mainViewer.clear();
}

async function openJob(id) {
  if (following) following.abort();
  const abort = new AbortController();
  following = abort;
  $('job-section').hidden = false;
  resetJobView(id);
  if ((await viewerModule) && !mainViewer) {
    $('viewer-block').hidden = false;
    mainViewer = await viewerIn($('viewer'));
    $('viewer-block').hidden = !mainViewer;
  }
  let job;
  try {
    job = await apiJson(jobPath(id));
    renderJob(job);
    if (!FINAL.has(job.status)) {
      await followJob(id, (event, data) => {
        if (abort.signal.aborted) return;
        if (event === 'deleted') {
          $('job-status').textContent = 'deleted';
          showError($('job-error'), 'The job was deleted.');
          return;
        }
        job = data;
        renderJob(job);
      }, abort.signal);
    }
    if (abort.signal.aborted) return;
    if (job.status === 'succeeded') await showResults(job, abort.signal);
  } catch (exc) {
    if (!abort.signal.aborted) showError($('job-error'), exc);
  }
  if (!abort.signal.aborted && FINAL.has(job?.status)) jobs.refresh();
}

function showMetrics(metrics) {
  const rows = metricRows(metrics).map(([name, value]) => el('tr', {}, [
    el('th', { scope: 'row', textContent: name }), el('td', { textContent: value })]));
  $('metrics').tBodies[0].replaceChildren(...rows);
  $('metrics').hidden = rows.length === 0;
}

function downloadButton(job, format) {
  const button = el('button', { type: 'button', textContent: `Download ${format.toUpperCase()}`,
    dataset: { format } });
  button.addEventListener('click', async () => {
    try {
      const url = URL.createObjectURL(await apiBlob(meshPath(job.id, format)));
      el('a', { href: url, download: `reconstruction-${job.id}.${format}` }).click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (exc) {
      showError($('job-error'), exc);
    }
  });
  return button;
}

async function showResults(job, signal) {
  showMetrics(job.metrics);
  $('downloads').replaceChildren(...job.formats.map((format) => downloadButton(job, format)));
  if (!mainViewer) return;
  const mesh = await (await apiFetch(meshPath(job.id, 'glb'), { signal })).arrayBuffer();
  if (signal.aborted) return;
  await mainViewer.showMesh(mesh, signal);
  $('toggle-support').disabled = !mainViewer.hasSupport;
  try {
    const points = await (await apiFetch(inputPath(job.id), { signal })).arrayBuffer();
    if (signal.aborted) return;
    await mainViewer.showPoints(points, $('toggle-points').checked, signal);
    $('toggle-points').disabled = false;
  } catch (exc) {
    if (!signal.aborted) {
      $('viewer-note').textContent = `input points unavailable: ${exc.text || exc.message}`;
    }
  }
}

function setUpToggles() {
  $('toggle-points').addEventListener('change', (event) => {
    if (mainViewer) mainViewer.setPointsVisible(event.target.checked);
  });
  $('toggle-support').addEventListener('change', (event) => {
    if (mainViewer) mainViewer.setSupportColouring(event.target.checked);
    $('support-legend').hidden = !event.target.checked;
  });
}

// --- two jobs side by side ---------------------------------------------------------------------
let compareViewers = null;

async function openCompare(a, b) {
  $('compare-section').hidden = false;
  showError($('compare-error'), null);
  const module = await viewerModule;
  if (!module) {
    showError($('compare-error'), 'the compare view needs the 3D view (see above)');
    return;
  }
  if (!compareViewers) {
    const viewers = [await viewerIn($('compare-a')), await viewerIn($('compare-b'))];
    if (!viewers[0] || !viewers[1]) {
      showError($('compare-error'), 'the compare view needs the 3D view (see above)');
      return;
    }
    compareViewers = viewers;
    module.linkCameras(...compareViewers);
  }
  const pairs = [[a, compareViewers[0], 'compare-a-label'], [b, compareViewers[1], 'compare-b-label']];
  try {
    await Promise.all(pairs.map(async ([job, viewer, label]) => {
      $(label).textContent = `${job.params.method} · ${job.params.preset} · ${job.id.slice(0, 12)}`;
      viewer.clear();
      const mesh = await (await apiFetch(meshPath(job.id, 'glb'))).arrayBuffer();
      await viewer.showMesh(mesh);
    }));
    compareViewers[1].copyCamera(compareViewers[0]);
  } catch (exc) {
    showError($('compare-error'), exc);
  }
  $('compare-section').scrollIntoView({ block: 'nearest' });
}

// --- start -----------------------------------------------------------------------------------
setUpKey();
setUpToggles();
$('refresh-jobs').addEventListener('click', () => jobs.refresh());
submitForm({
  onSubmitted: (job) => {
    jobs.refresh();
    openJob(job.id);
  },
});
if (apiKey()) jobs.refresh();
