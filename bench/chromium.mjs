// The flags every browser part of the benchmark suite launches Chromium with: fake devices,
// media allowed to play and to flow over loopback, headless, nothing fetched in the background.
export const CHROMIUM_FLAGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-sandbox',
  '--headless',
];
