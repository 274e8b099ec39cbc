/** Types of generate.mjs for the tests that import it. */
export declare const DATASOURCE_UID: string;
export declare const DASHBOARDS: Record<string, object>;
export declare function render(dash: object): string;
