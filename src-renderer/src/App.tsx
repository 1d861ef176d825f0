import { useEffect, useMemo } from 'react';
import { QuotaNotice } from './components/QuotaNotice.tsx';
import { SyncIndicator } from './components/SyncIndicator.tsx';
import { Toasts } from './components/Toasts.tsx';
import { UsageMeter } from './components/UsageMeter.tsx';
import { planName } from './lib/format.ts';
import type { Screen } from './stores/app.ts';
import { isActive } from './stores/jobs.ts';
import { useS, useStores } from './stores/index.ts';
import { AccountScreen } from './screens/AccountScreen.tsx';
import { GalleryScreen } from './screens/GalleryScreen.tsx';
import { GenerateScreen } from './screens/GenerateScreen.tsx';
import { QueueScreen } from './screens/QueueScreen.tsx';
import { SettingsScreen } from './screens/SettingsScreen.tsx';

const SCREENS: { id: Screen; label: string; icon: string }[] = [
  { id: 'generate', label: 'Generate', icon: '✦' },
  { id: 'queue', label: 'Queue', icon: '☰' },
  { id: 'gallery', label: 'Gallery', icon: '▦' },
  { id: 'account', label: 'Account', icon: '◉' },
  { id: 'settings', label: 'Settings', icon: '⚙' },
];
const isScreen = (s: string): s is Screen => SCREENS.some((x) => x.id === s);

/** Applies the theme setting: 'system' follows prefers-color-scheme through CSS. */
export function useTheme(theme: 'system' | 'light' | 'dark' | undefined) {
  useEffect(() => {
    if (!theme) return;
    if (theme === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    try {
      localStorage.setItem('atelier.theme', theme);
    } catch {
      // Private mode: the setting still applies for this session.
    }
  }, [theme]);
}

export function App() {
  const s = useStores();
  const screen = useS(s.app, (x) => x.screen);
  const connection = useS(s.app, (x) => x.connection);
  const account = useS(s.account, (x) => x.state);
  const theme = useS(s.settings, (x) => x.settings?.theme);
  const jobMap = useS(s.jobs, (x) => x.jobs);
  const activeJobs = useMemo(() => Object.values(jobMap).filter(isActive).length, [jobMap]);
  useTheme(theme);

  // The screen lives in the address (#/gallery) so reloads and back/forward keep it.
  useEffect(() => {
    const fromHash = () => {
      const h = location.hash.replace(/^#\/?/, '');
      if (isScreen(h)) s.app.getState().navigate(h);
    };
    fromHash();
    window.addEventListener('hashchange', fromHash);
    return () => window.removeEventListener('hashchange', fromHash);
  }, [s.app]);
  useEffect(() => {
    if (location.hash !== `#/${screen}`) history.replaceState(null, '', `#/${screen}`);
    document.title = `${SCREENS.find((x) => x.id === screen)?.label ?? ''} · Atelier`;
  }, [screen]);

  // Global shortcuts: Ctrl/⌘+1..5 switch screens.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && /^[1-5]$/.test(e.key)) {
        e.preventDefault();
        s.app.getState().navigate(SCREENS[Number(e.key) - 1]!.id);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [s.app]);

  return (
    <div className="app">
      <a
        href="#main"
        className="skip-link"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header className="rail">
        <div className="brand" aria-label="Atelier">
          <span className="brand-mark" aria-hidden="true">
            ◐
          </span>
          <span className="brand-name">Atelier</span>
        </div>
        <nav aria-label="Main">
          <ul>
            {SCREENS.map((x, i) => (
              <li key={x.id}>
                <a
                  href={`#/${x.id}`}
                  className={`nav-item ${screen === x.id ? 'nav-current' : ''}`}
                  aria-current={screen === x.id ? 'page' : undefined}
                  title={`${x.label} (Ctrl+${i + 1})`}
                  onClick={(e) => {
                    e.preventDefault();
                    s.app.getState().navigate(x.id);
                  }}
                >
                  <span className="nav-icon" aria-hidden="true">
                    {x.icon}
                  </span>
                  <span>{x.label}</span>
                  {x.id === 'queue' && activeJobs > 0 && (
                    <span className="nav-count" aria-label={`${activeJobs} active`}>
                      {activeJobs}
                    </span>
                  )}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div className="rail-footer">
          {account?.signedIn ? (
            <>
              <span className={`plan-badge plan-${account.plan ?? 'none'}`}>{planName(account.plan)}</span>
              <UsageMeter usage={account.usage} compact />
              <SyncIndicator />
            </>
          ) : (
            <a
              href="#/account"
              className="muted small"
              onClick={(e) => {
                e.preventDefault();
                s.app.getState().navigate('account');
              }}
            >
              Sign in for cloud runs
            </a>
          )}
        </div>
      </header>
      <div className="content">
        {connection !== 'open' && (
          <div className="banner banner-error" role="alert">
            Lost the connection to Atelier. Reconnecting…
          </div>
        )}
        {account && account.signedIn && !account.online && (
          <div className="banner banner-warning" role="status">
            You are offline. Local generation still works; cloud jobs will be sent when you are back online.
          </div>
        )}
        <QuotaNotice />
        <main id="main" tabIndex={-1}>
          {screen === 'generate' && <GenerateScreen />}
          {screen === 'queue' && <QueueScreen />}
          {screen === 'gallery' && <GalleryScreen />}
          {screen === 'account' && <AccountScreen />}
          {screen === 'settings' && <SettingsScreen />}
        </main>
      </div>
      <Toasts />
    </div>
  );
}
