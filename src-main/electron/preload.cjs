// The preload of the sandboxed renderer: exposes `window.atelier = { invoke, on }` and nothing
// else. Plain CommonJS because sandboxed preloads cannot load ES modules or TypeScript.
'use strict';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- sandboxed preloads are CommonJS only
const { contextBridge, ipcRenderer } = require('electron');

contextBridge.exposeInMainWorld('atelier', {
  invoke: (channel, input) => ipcRenderer.invoke('atelier:invoke', { channel: String(channel), input }),
  on: (event, listener) => {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const wanted = String(event);
    const handler = (_e, name, payload) => {
      if (name === wanted) listener(payload);
    };
    ipcRenderer.on('atelier:event', handler);
    return () => ipcRenderer.removeListener('atelier:event', handler);
  },
});
