import pg from "pg";
import { queryTextRows } from "../../../src/db/text-rows-query.js";
import { TEST_DATABASE_URL, requirePostgres } from "../../helpers/db.js";

// The hot path's statements (decision H47): rows as the columns' text, pg's Query otherwise.
beforeAll(requirePostgres);

let client: pg.Client;
beforeAll(async () => {
  // `binary` is a ClientConfig key of pg's that its types do not declare: the rows stay text.
  client = new pg.Client({ connectionString: TEST_DATABASE_URL, binary: true } as pg.ClientConfig);
  await client.connect();
});
afterAll(() => client.end());

it("rows come back as column texts in select order, null as null, named or not", async () => {
  const text = "SELECT $1::text AS a, 2::int AS b, NULL::text AS c, '[1]'::json AS d";
  for (const name of ["tl_test_text_rows", "tl_test_text_rows", undefined]) {
    expect(await queryTextRows(client, name, text, ["x"])).toEqual([["x", "2", null, "[1]"]]);
  }
  expect(await queryTextRows(client, undefined, "SELECT 1 WHERE false", [])).toEqual([]);
});

it("a statement after a failed one on the same connection is answered (regression: the rows field stopped the Sync)", async () => {
  await expect(
    queryTextRows(client, "tl_test_text_bad", "SELECT $1::text", ["bad\u0000"]),
  ).rejects.toMatchObject({ code: "22021" });
  await expect(queryTextRows(client, "tl_test_text_ok", "SELECT $1::text", ["y"])).resolves.toEqual(
    [["y"]],
  );
});

it("an error from the server rejects with pg's DatabaseError and its SQLSTATE", async () => {
  await expect(queryTextRows(client, undefined, "SELECT 1/0", [])).rejects.toMatchObject({
    code: "22012",
  });
});
