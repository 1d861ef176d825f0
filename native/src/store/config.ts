import os from 'node:os';
import path from 'node:path';

/** Where the engine keeps installed models and its caches, after environment overrides. */
export interface StoreLocations {
  /** The user's models folder (ATELIER_MODELS_DIR overrides the platform default). */
  modelsDir: string;
  /** The cache folder for optimised graphs (ATELIER_CACHE_DIR overrides the platform default). */
  cacheDir: string;
}

export interface PlatformInfo {
  platform: NodeJS.Platform;
  home: string;
  /** The relevant environment values; only this module reads process.env. */
  env: { XDG_DATA_HOME?: string; XDG_CACHE_HOME?: string; APPDATA?: string; LOCALAPPDATA?: string };
}

/** The platform's conventional data and cache folders for Atelier. */
export function platformLocations(p: PlatformInfo): StoreLocations {
  const { platform, home, env } = p;
  if (platform === 'win32') {
    const roaming = env.APPDATA ?? path.win32.join(home, 'AppData', 'Roaming');
    const local = env.LOCALAPPDATA ?? path.win32.join(home, 'AppData', 'Local');
    return {
      modelsDir: path.win32.join(roaming, 'Atelier', 'models'),
      cacheDir: path.win32.join(local, 'Atelier', 'Cache'),
    };
  }
  if (platform === 'darwin') {
    return {
      modelsDir: path.posix.join(home, 'Library', 'Application Support', 'Atelier', 'models'),
      cacheDir: path.posix.join(home, 'Library', 'Caches', 'Atelier'),
    };
  }
  const data = env.XDG_DATA_HOME || path.posix.join(home, '.local', 'share');
  const cache = env.XDG_CACHE_HOME || path.posix.join(home, '.cache');
  return { modelsDir: path.posix.join(data, 'atelier', 'models'), cacheDir: path.posix.join(cache, 'atelier') };
}

/** Reads the locations from the environment once: ATELIER_MODELS_DIR, ATELIER_CACHE_DIR, else platform defaults. */
export function storeLocationsFromEnv(env: NodeJS.ProcessEnv = process.env): StoreLocations {
  const defaults = platformLocations({
    platform: process.platform,
    home: os.homedir(),
    env: {
      XDG_DATA_HOME: env.XDG_DATA_HOME,
      XDG_CACHE_HOME: env.XDG_CACHE_HOME,
      APPDATA: env.APPDATA,
      LOCALAPPDATA: env.LOCALAPPDATA,
    },
  });
  return {
    modelsDir: env.ATELIER_MODELS_DIR ? path.resolve(env.ATELIER_MODELS_DIR) : defaults.modelsDir,
    cacheDir: env.ATELIER_CACHE_DIR ? path.resolve(env.ATELIER_CACHE_DIR) : defaults.cacheDir,
  };
}
