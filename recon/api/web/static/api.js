// Talking to the API from the page: the key lives in sessionStorage and travels only in the
// Authorization header (never in a URL); every failure becomes an ApiError whose text is the
// API's own message and code, or a plain sentence when the service cannot be reached.

const KEY_NAME = 'recon.apiKey';

export function apiKey() {
  return sessionStorage.getItem(KEY_NAME) || '';
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY_NAME, value);
  else sessionStorage.removeItem(KEY_NAME);
}

export function authHeaders() {
  const key = apiKey().trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** A URL of the API, relative to the page so the service may sit behind a path prefix. */
export function apiUrl(path) {
  return new URL(`v1/${path}`, document.baseURI).toString();
}

export class ApiError extends Error {
  constructor(message, { status = 0, code = '' } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** What the page shows: the API's message, its code in brackets. */
  get text() {
    return this.code ? `${this.message} (${this.code})` : this.message;
  }
}

function detailLines(detail) {
  if (!Array.isArray(detail)) return '';
  const lines = detail
    .filter((item) => item && item.msg)
    .map((item) => `${(item.loc || []).filter((part) => part !== 'body').join('.')}: ${item.msg}`);
  return lines.length ? ` - ${lines.join('; ')}` : '';
}

/** The ApiError for a non-2xx response, from the service's error body when it has one. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && body.error;
  if (error && error.message) {
    const message = `${error.message}${detailLines(error.detail)}`;
    return new ApiError(message, { status: response.status, code: error.code || '' });
  }
  return new ApiError(`the service answered ${response.status} ${response.statusText}`.trim(),
    { status: response.status });
}

/** fetch() with the key header; resolves to the response when 2xx, else throws an ApiError. */
export async function apiFetch(path, options = {}) {
  const headers = { ...authHeaders(), ...(options.headers || {}) };
  let response;
  try {
    response = await fetch(apiUrl(path), { ...options, headers, cache: 'no-store' });
  } catch (exc) {
    if (exc && exc.name === 'AbortError') throw exc;
    throw new ApiError('The service could not be reached; check that it is running and retry.');
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function apiJson(path, options = {}) {
  return (await apiFetch(path, options)).json();
}

/** The response body as a Blob (meshes, thumbnails, input points): fetched with the key header,
 * shown or saved through blob: URLs, so the key never appears in a URL. */
export async function apiBlob(path, options = {}) {
  return (await apiFetch(path, options)).blob();
}

export function jobPath(id, rest = '') {
  return `reconstructions/${encodeURIComponent(id)}${rest}`;
}

/** The URL of a job's mesh in `format`, streamed by the API even when storage is S3. */
export function meshPath(id, format) {
  return jobPath(id, `/mesh?format=${encodeURIComponent(format)}&redirect=false`);
}

export const INPUT_POINTS_MAX = 50000;

export function inputPath(id) {
  return jobPath(id, `/input?format=glb&max_points=${INPUT_POINTS_MAX}`);
}

export function previewPath(id) {
  return jobPath(id, '/preview.png');
}
