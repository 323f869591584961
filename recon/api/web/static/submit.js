// The submit form: a point cloud (dropped, chosen or a bundled example) and the public
// parameters, posted as multipart to POST /v1/reconstructions with the key header.

import { apiFetch } from './api.js';
import { showError } from './dom.js';

const $ = (id) => document.getElementById(id);
const NUMBER_FIELDS = ['resolution', 'max_iterations', 'seed', 'trim_distance', 'target_faces'];
const CHOICE_FIELDS = ['method', 'preset', 'surface', 'up_axis', 'units', 'use_normals'];

/** The `params` JSON from the form: only the fields that were given. */
export function formParams(form) {
  const params = {};
  for (const name of CHOICE_FIELDS) {
    const value = form.elements[name].value;
    if (value) params[name] = value;
  }
  for (const name of NUMBER_FIELDS) {
    const value = form.elements[name].value.trim();
    if (value !== '') params[name] = Number(value);
  }
  const formats = [...form.querySelectorAll('input[name=formats]:checked')].map((box) => box.value);
  if (formats.length) params.formats = ['glb', ...formats];
  return params;
}

export function submitForm({ onSubmitted }) {
  const form = $('submit-form');
  const error = $('submit-error');
  const label = $('file-label');
  let file = null;

  const choose = (chosen, origin) => {
    file = chosen;
    label.textContent = chosen ? `${chosen.name} (${chosen.size.toLocaleString('en')} bytes, ${origin})`
      : 'Drop a point cloud here (PLY, XYZ/PTS, NPY, LAS/LAZ) or click to choose';
    showError(error, null);
  };

  $('file-input').addEventListener('change', (event) => {
    if (event.target.files.length) choose(event.target.files[0], 'chosen');
    $('example').value = '';
  });
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0], 'dropped');
    $('example').value = '';
  });
  $('example').addEventListener('change', async (event) => {
    const name = event.target.value;
    if (!name) return;
    try {
      const response = await fetch(new URL(`web/examples/${name}`, document.baseURI));
      if (!response.ok) throw new Error(`the example ${name} is missing (${response.status})`);
      choose(new File([await response.blob()], name), 'example');
    } catch (exc) {
      showError(error, exc.message);
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file) {
      showError(error, 'Choose a point cloud file or an example first.');
      return;
    }
    const body = new FormData();
    body.append('file', file, file.name);
    body.append('params', JSON.stringify(formParams(form)));
    const button = $('submit-button');
    button.disabled = true;
    showError(error, null);
    try {
      const response = await apiFetch('reconstructions', { method: 'POST', body });
      onSubmitted(await response.json());
    } catch (exc) {
      showError(error, exc);
    } finally {
      button.disabled = false;
    }
  });
}
