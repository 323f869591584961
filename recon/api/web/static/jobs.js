// The tenant's recent jobs: status, method and a thumbnail (the job's preview.png, fetched with
// the key header into a blob: URL), a click opens one, two ticked succeeded jobs can be compared.

import { apiBlob, apiJson, previewPath } from './api.js';
import { el, showError } from './dom.js';

const PAGE_SIZE = 20;
const LIVE_REFRESH_MS = 5000; // while a listed job is queued or running
const FINAL = new Set(['succeeded', 'failed', 'canceled']);

export class JobList {
  constructor({ list, error, compareButton, onOpen, onCompare }) {
    this.list = list;
    this.error = error;
    this.compareButton = compareButton;
    this.onOpen = onOpen;
    this.thumbnails = new Map(); // job id -> blob: URL (a finished job's preview never changes)
    this.jobs = new Map();
    this.generation = 0; // only the latest refresh may draw the list
    this.timer = null;
    this.picked = [];
    compareButton.addEventListener('click', () => {
      const [a, b] = this.checked().map((id) => this.jobs.get(id));
      if (a && b) onCompare(a, b);
    });
  }

  /** The ticked jobs' ids in the order they were ticked (the first shows on the left). */
  checked() {
    return this.picked.filter((id) => this.jobs.get(id)?.status === 'succeeded');
  }

  updateCompareButton() {
    this.compareButton.disabled = this.checked().length !== 2;
  }

  async refresh() {
    const generation = ++this.generation;
    clearTimeout(this.timer);
    let page;
    try {
      page = await apiJson(`reconstructions?limit=${PAGE_SIZE}`);
    } catch (exc) {
      if (generation !== this.generation) return;
      showError(this.error, exc);
      this.jobs = new Map();
      this.list.replaceChildren(); // another key's jobs must not stay on screen
      this.updateCompareButton();
      return;
    }
    if (generation !== this.generation) return;
    showError(this.error, null);
    if (page.items.some((job) => !FINAL.has(job.status))) {
      this.timer = setTimeout(() => this.refresh(), LIVE_REFRESH_MS);
    }
    this.jobs = new Map(page.items.map((job) => [job.id, job]));
    this.picked = this.checked();
    this.list.replaceChildren(...page.items.map((job) => this.row(job, this.picked.includes(job.id))));
    this.updateCompareButton();
    await Promise.all(page.items.filter((job) => job.status === 'succeeded')
      .map((job) => this.loadThumbnail(job.id)));
  }

  row(job, ticked) {
    const thumb = el('div', { className: 'thumb', dataset: { thumbFor: job.id } });
    const cached = this.thumbnails.get(job.id);
    if (cached) thumb.append(el('img', { src: cached, alt: `preview of ${job.id}` }));
    const open = el('button', { type: 'button', className: 'link', textContent: job.id.slice(0, 12) });
    open.addEventListener('click', () => this.onOpen(job.id));
    const created = new Date(job.created_at).toLocaleString();
    const facts = `${job.params.method} · ${job.params.preset} · ${created}`;
    const item = el('li', { dataset: { jobId: job.id, status: job.status } }, [
      thumb,
      el('div', { className: 'job-text' }, [
        open,
        el('span', { className: `status status-${job.status}`, textContent: job.status }),
        el('div', { className: 'hint', textContent: facts }),
      ]),
    ]);
    if (job.status === 'succeeded') {
      const box = el('input', { type: 'checkbox', value: job.id, checked: ticked,
        title: 'compare this job' });
      box.addEventListener('change', () => {
        this.picked = this.picked.filter((id) => id !== job.id);
        if (box.checked) this.picked.push(job.id);
        this.updateCompareButton();
      });
      item.append(el('label', { className: 'compare-pick' }, [box, ' compare']));
    }
    return item;
  }

  async loadThumbnail(id) {
    let url = this.thumbnails.get(id);
    if (!url) {
      try {
        url = URL.createObjectURL(await apiBlob(previewPath(id)));
      } catch {
        return; // no preview (older job, or the API has none): the row keeps its placeholder
      }
      this.thumbnails.set(id, url);
    }
    const slot = this.list.querySelector(`[data-thumb-for="${CSS.escape(id)}"]`);
    if (slot && !slot.querySelector('img')) slot.append(el('img', { src: url, alt: `preview of ${id}` }));
  }
}
