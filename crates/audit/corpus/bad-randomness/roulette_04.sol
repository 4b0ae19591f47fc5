pragma solidity ^0.4.25;

// The fifteenth second wins the pot; the miner chooses the timestamp.
contract Roulette {
    uint256 public pastBlockTime;

    constructor() public payable {}

    function () public payable {
        require(msg.value == 10 ether);
        require(now != pastBlockTime);
        pastBlockTime = now;
        if (now % 15 == 0) { // expect: bad-randomness
            msg.sender.transfer(this.balance);
        }
    }
}
