// The reducer's results in H5Web: the `publish` tree read through the reducer's h5grove
// endpoints. Every URL is relative to the page (/viewer/), so the viewer works behind any
// prefix a proxy adds. The page polls the publish version once a second and, when it moved,
// gives the provider a new reset key: H5Web re-reads the metadata and values it shows, while
// the selected dataset and its view settings stay as they are.
import '@h5web/app/styles.css';

import { App, createBasicFetcher, H5GroveProvider } from '@h5web/app';
import { StrictMode, Suspense, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

// absolute (H5Web builds export links with `new URL`), but found relative to the page
const API = new URL('../h5grove', window.location.href).href.replace(/\/$/, '');
const POLL_MS = 1000;

function usePublishVersion() {
  // undefined: not asked yet; null: the version endpoint did not answer (no live updates)
  const [version, setVersion] = useState(undefined);
  useEffect(() => {
    let stopped = false;
    let timer;
    async function poll() {
      try {
        const response = await fetch(`${API}/version`, { cache: 'no-store' });
        const body = response.ok ? await response.json() : null;
        if (!stopped) setVersion((old) => (body ? body.version : old ?? null));
      } catch {
        if (!stopped) setVersion((old) => old ?? null);  // reducer restarting: keep the view
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    }
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  return version;
}

// One fetcher per publish version, kept outside React: after a reset, H5Web's renders suspend
// and are retried with fresh stores (memoized values of a render that did not commit are
// dropped), asking for the same metadata over and over. Metadata and attribute answers are
// therefore shared within a version: one request each, not dozens. Values go through unchanged
// (H5Web aborts them when the selection changes).
let current = { version: undefined, fetcher: undefined };

function fetcherFor(version) {
  if (current.version !== version) current = { version, fetcher: versionFetcher() };
  return current.fetcher;
}

function versionFetcher() {
  const basic = createBasicFetcher();
  const shared = new Map();
  return (url, params, opts) => {
    if (url.endsWith('/data')) return basic(url, params, opts);
    const key = `${url}?${new URLSearchParams(params)}`;
    if (!shared.has(key)) shared.set(key, basic(url, params));
    return shared.get(key);
  };
}

function Viewer() {
  const version = usePublishVersion();
  const fetcher = fetcherFor(version);
  if (version === undefined) return null;
  return (
    <Suspense fallback={null}>
      <H5GroveProvider url={API} filepath="publish" fetcher={fetcher} resetKeys={[version]}>
        <App sidebarOpen />
      </H5GroveProvider>
    </Suspense>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <Viewer />
  </StrictMode>,
);
