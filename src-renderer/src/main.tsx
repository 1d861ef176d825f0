import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { createApi, pickBridge } from './bridge.ts';
import { connectEvents, createStores, StoresContext } from './stores/index.ts';
import './styles.css';

const root = createRoot(document.getElementById('root')!);
const picked = pickBridge();

if (!picked) {
  root.render(
    <main className="no-bridge">
      <h1>Atelier</h1>
      <p>
        This page needs the Atelier app behind it. Start it with <code>npm start</code> and open the address it prints
        (it includes an access token).
      </p>
    </main>,
  );
} else {
  const stores = createStores(createApi(picked.bridge));
  if (picked.ws) {
    const ws = picked.ws;
    stores.app.getState().setConnection(ws.state);
    ws.onState((state) => {
      stores.app.getState().setConnection(state);
      // After a reconnect, events may have been missed: reload what they keep current.
      if (state === 'open') void loadAll();
    });
  }
  connectEvents(stores);
  const report = (e: unknown) => stores.app.getState().reportError(e);
  async function loadAll() {
    await Promise.all([
      stores.account.getState().load().catch(report),
      stores.settings.getState().load().catch(report),
      stores.jobs.getState().load().catch(report),
      stores.gallery.getState().refresh(),
      stores.gallery.getState().loadBoards(),
    ]);
    // First-run defaults come from settings: the scheduler and where to run.
    const settings = stores.settings.getState().settings;
    const form = stores.generate.getState().form;
    if (settings && form.prompt === '')
      stores.generate.setState({ form: { ...form, scheduler: settings.defaultScheduler, target: settings.runMode } });
    void stores.generate.getState().explain();
  }
  void loadAll();
  root.render(
    <StrictMode>
      <StoresContext.Provider value={stores}>
        <App />
      </StoresContext.Provider>
    </StrictMode>,
  );
}
