pragma solidity ^0.6.0;

contract MinerBonus {
    receive() external payable {}

    function claim() external {
        if (block.coinbase == msg.sender) { // expect: bad-randomness
            msg.sender.transfer(1 ether);
        }
    }
}
