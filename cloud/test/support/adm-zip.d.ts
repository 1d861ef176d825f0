// adm-zip ships no types; tests only read entries back.
declare module 'adm-zip' {
  interface Entry {
    entryName: string;
    getData(): Buffer;
  }
  export default class AdmZip {
    constructor(data: Buffer);
    getEntries(): Entry[];
  }
}
