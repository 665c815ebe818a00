module gateway.test/helmrender

go 1.19
