pragma solidity ^0.5.0;

contract EvenSecond {
    address payable public winner;

    function play() public payable {
        require(msg.value == 1 ether);
        if (block.timestamp % 2 == 0) { // expect: bad-randomness
            winner = msg.sender;
        }
    }

    function payout() public {
        require(msg.sender == winner);
        winner.transfer(address(this).balance);
    }
}
